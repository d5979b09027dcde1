# anole: `make` builds build/anole; `make demo` and `make check` also
# install missing Debian packages first (scripts/deps.sh, needs root).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
MESON      ?= meson
NINJA      ?= ninja

.PHONY: all anole deps demo check test asan fuzz fuzz-run bench clean cross check-cross

all: anole

anole: $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --buildtype=release

$(ASAN_BUILD)/build.ninja:
	$(MESON) setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fno-sanitize-recover=undefined

$(FUZZ_BUILD)/build.ninja:
	CC=clang $(MESON) setup $(FUZZ_BUILD) --buildtype=debug -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false

deps:
	@./scripts/deps.sh

asan: $(ASAN_BUILD)/build.ninja
	$(NINJA) -C $(ASAN_BUILD)

fuzz: $(FUZZ_BUILD)/build.ninja
	$(NINJA) -C $(FUZZ_BUILD)

# A short libFuzzer run over the image reader (longer: FUZZ_SECONDS=600).
FUZZ_SECONDS ?= 60
fuzz-run: fuzz
	./fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

demo: deps
	$(MAKE) anole
	./scripts/demo.sh $(BUILD)/anole

# Every test, against the ASan+UBSan build; then a short fuzz run.
check: deps
	$(MAKE) anole asan fuzz
	./tests/run.sh --anole $(ASAN_BUILD)/anole --fuzz-build $(FUZZ_BUILD)

test: anole asan
	./tests/run.sh --anole $(ASAN_BUILD)/anole

bench: deps
	$(MAKE) anole
	./bench/build.sh $(BUILD)/anole

# Cross builds (docs/multiarch.md): build-ARCH/anole for ARCH=aarch64|s390x
# with Debian's cross compiler and a sysroot of the target's libraries;
# check-cross runs the unit tests, image builds and the fuzz corpora under
# user-mode QEMU and compares the images with the host build's, byte for byte.
ARCH ?= aarch64
CROSS_ROOT ?= /var/cache/anole-cross
CROSS_BUILD = build-$(ARCH)

cross:
	@ANOLE_CROSS_ROOT=$(CROSS_ROOT) ./scripts/deps.sh --cross $(ARCH)
	@btf=$(CROSS_ROOT)/$(ARCH)/vmlinux.btf; opt=; [ ! -f $$btf ] || opt=-Ddiag_btf=$$btf; \
	[ -f $(CROSS_BUILD)/build.ninja ] || $(MESON) setup $(CROSS_BUILD) --buildtype=release \
		-Dfuzz_replay=true $$opt \
		--cross-file $(CROSS_ROOT)/$(ARCH)/meson.ini --cross-file cross/$(ARCH).ini
	$(NINJA) -C $(CROSS_BUILD)

check-cross: cross anole
	./tests/cross.sh $(ARCH) $(CROSS_BUILD) $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-aarch64 build-s390x build-riscv64
