/* SPDX-License-Identifier: Apache-2.0 */
/* Little-endian conversions for on-disk formats (portable across hosts). */
#ifndef ANOLE_ENDIAN_H
#define ANOLE_ENDIAN_H
#include <endian.h>
#include <stdint.h>

#define cpu_to_le16(x) ((uint16_t)htole16(x))
#define cpu_to_le32(x) ((uint32_t)htole32(x))
#define cpu_to_le64(x) ((uint64_t)htole64(x))
#define le16_to_cpu(x) ((uint16_t)le16toh(x))
#define le32_to_cpu(x) ((uint32_t)le32toh(x))
#define le64_to_cpu(x) ((uint64_t)le64toh(x))
#include <string.h>

/* Store little-endian values at unaligned addresses. */
static inline void put_le16(void *p, uint16_t v) { v = cpu_to_le16(v); memcpy(p, &v, 2); }
static inline void put_le32(void *p, uint32_t v) { v = cpu_to_le32(v); memcpy(p, &v, 4); }
static inline void put_le64(void *p, uint64_t v) { v = cpu_to_le64(v); memcpy(p, &v, 8); }
#endif
