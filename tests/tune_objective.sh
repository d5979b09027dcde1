# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# A synthetic benchmark for t_tune_search, sourced by the search's `sh -c`
# (builtins only: one process per run, so ten seeds of two searches stay
# quick). D is the directory of its knobs x, y, z. The objective is a bump
#     score = 100 / (1 + (x-73)^2/625 + (y-21)^2/400 + (z-8)^2/900)
# (x, y in 0..100, z in -50..50), times 1000, plus uniform noise of +-1
# (1% of the optimum) from a linear congruential generator kept in D/noise.
# Within 5% of the optimum (score >= 95) is a ellipsoid of about 0.07% of
# the search space: random search with 40 trials hits it with p ~ 3%.
read x <"$D/x"; read y <"$D/y"; read z <"$D/z"
read s <"$D/noise" 2>/dev/null || s=1
s=$(( (s * 1103515245 + 12345) % 2147483648 ))
echo $s >"$D/noise"
q=$(( (x-73)*(x-73)*1000/625 + (y-21)*(y-21)*1000/400 + (z-8)*(z-8)*1000/900 ))
echo "score: $(( 100000000 / (1000 + q) + (s / 65536 % 2001) - 1000 ))"
