// Package dp turns exact, per-person-bounded aggregates into differentially private releases.
//
// Invariant: no exported function returns an un-noised statistic, and every released number
// comes with the mechanism parameters that produced it (Released, Part). The query engine
// computes the bounded totals in DuckDB and hands them to dp; dp never sees rows.
//
// dp is pure: no I/O, no SQL execution, no HTTP, no logging, no global state of its own (a
// test holds `go list -deps` to that; DefaultTree is a default for callers, never read by dp). Every noise draw comes from
// github.com/google/differential-privacy/go/v3/noise, whose samplers are discretised (secure
// against floating-point attacks) and read crypto/rand; dp never seeds, wraps or replaces
// them. The exported SQL builder (NodeSQL) only returns strings, so that DuckDB and Go
// compute the same buckets. dp validates every argument before calling the library, so
// none of the library's glog warnings (equal bounds, unknown noise) can fire.
//
// Errors depend only on parameters (budgets, bounds, scale, tree, confidence), never on the
// exact aggregates: an error that happened for one dataset and not for its neighbour would
// itself reveal a person. Where arithmetic on exact values could overflow, dp saturates
// instead (clamping is 1-Lipschitz, so no sensitivity grows). Every error wraps an
// *ArgumentError naming the parameter; errors.Is(err, ErrInvalidArgument) holds.
//
// The derivations below are written to be lifted into docs/privacy.md.
//
// # Mechanisms and noise scales
//
// Sensitivities are given to the library as L0 (how many released totals one person can
// change) and LInf (by how much at most, each). ChooseMechanism picks the mechanism from the
// budget alone: Laplace when δ = 0, Gaussian when δ > 0.
//
//   - Laplace: the library adds two-sided geometric noise of scale b = L1/ε with L1 = L0·LInf
//     (noise.laplaceLambda). Variance 2b². Pure ε-DP.
//   - Gaussian: σ = noise.SigmaForGaussian(L0, LInf, ε, δ), the smallest σ (to 0.1%) for which
//     the Gaussian mechanism with L2 = LInf·√L0 is (ε, δ)-DP by Balle and Wang's analytic
//     bound (2018, Thm. 8). L2 = LInf·√L0 is exact when the person's change is spread over L0
//     totals by at most LInf each.
//
// Released.Scale is b or σ in the mechanism's input units; the tests check it against the
// library's own confidence intervals and against the empirical variance of its noise.
//
// # Budget split
//
// Split divides (ε, δ) equally among a query's mechanisms and, when group keys are not public,
// one more share for partition selection (as ZetaSQL does); AVG counts 2 mechanisms, VAR and
// STDDEV 3, a set of quantiles over one column 1 (one noisy tree answers every rank).
// Sequential composition gives a total of at most (ε, δ): shares are rounded down so that
// n·share ≤ total in exact arithmetic. Because δ is split too, a query that declares δ > 0
// gets Gaussian noise for every aggregate; Laplace needs δ = 0, which in turn rules out
// partition selection (Split refuses it).
//
// # Sensitivities per aggregate
//
// With G = MaxGroups and C = MaxContributionsPerGroup (a person has rows in at most G groups
// and at most C rows in each), and M = max(|lo|, |hi|):
//
//	aggregate                 L0       LInf                         units
//	COUNT(*)                  G        C                            rows
//	COUNT(DISTINCT pid)       G        1                            persons
//	SUM (scaled integers)     G        C·m, m = ⌈fl(M·scale)⌉       1/scale
//	AVG: centred sum          G        C·(b−a)                      1/(2·scale)
//	AVG: count                G        C                            rows
//	VAR: count, sum           G        C, C·m                       rows, 1/scale
//	VAR: sum of squares       G        C·m²                         1/scale²
//	quantile tree nodes       H·G      C                            rows (H = tree height)
//
// A neighbouring dataset adds or removes one person. With the bounding above, the vector of
// totals one mechanism noises changes by at most L1 = L0·LInf and L2 = LInf·√L0, which is all
// the library's calibration uses (Laplace reads L1, Gaussian L2). For the group aggregates
// that is at most G totals changing by at most LInf each; for the tree, where one person can
// touch more than H·G nodes, see Quantiles. dp keeps L0·LInf ≤ 2⁵³ so the library's int64 L1
// cannot overflow.
//
// # Row truncation
//
// If the engine bounds a person by truncating to k rows in total (rather than G groups × C
// rows), the vector of counts over all groups changes by L1 ≤ k and L2 ≤ k (all k rows may
// fall in one group), which is exactly L0 = 1, LInf = k: pass Bounding{MaxGroups: 1,
// MaxContributionsPerGroup: k}. The same holds for sums (LInf = k·m) and for the tree
// (L0 = H, LInf = k: L1 = H·k, L2 = k·√H). Partition selection counts persons, and such a
// person can be in k groups: pass maxGroups = k to KeepPartition.
//
// # Sums as scaled integers
//
// A sum of floats noised in floating point can leak through the float's low bits (Mironov
// 2012), so dp noises integers: Sum, Mean and Variance take exact totals in units of 1/scale
// (1/scale² for a sum of squares) and assume only this of them. With [a, b] =
// [⌊fl(lo·scale)⌋, ⌈fl(hi·scale)⌉] and m = ⌈fl(M·scale)⌉, a person who adds k ≤ C rows to a
// group's count adds to its scaled sum an integer in [k·a, k·b], and to its scaled sum of
// squares an integer in [0, k·m²]. Rounding in IEEE arithmetic is monotone, so
// |fl(x·scale)| ≤ fl(M·scale) for x in [lo, hi]: |a|, |b| ≤ m, and a person's share of a
// scaled sum is at most C·m in magnitude, the LInf of the table above.
//
// dp does not build these totals; the query engine computes them in DuckDB (query/rewrite.go,
// docs/privacy.md). Per person and group it sums the clamped values as DOUBLE and counts
// them (s and c), keeps k = min(c, C) rows, and adds round(s/c·k·scale) clamped to
// [k·a, k·b]: the person's mean over their rows, times the rows kept, as one integer (and the
// sum of squares likewise, clamped to [0, k·m²]). Rounding once per person and group, not
// once per row, is what keeps a person's mean when their rows beyond C are cut; a total of
// per-row integers round(fl(clamp(x)·scale)) would meet the same assumption.
//
// SumScale picks scale = 10^k, the largest with M·scale ≤ 10⁵: resolution within 0.005% of M,
// and 2⁶³ holds 9.2·10¹³ rows of sum and 9.2·10⁸ rows of sum of squares. Value =
// noisy/scale; L0, LInf and Scale stay in scaled units and Released.Unit = scale.
//
// # Mean
//
// As dpagg.BoundedMean does, dp centres the sum before adding noise, computed from the two
// exact totals it is given: a person's share of S lies in [k·a, k·b] for the k rows they
// add to N (above), so their share of T = 2·S − (a+b)·N lies in [−k·(b−a), k·(b−a)], and T's
// LInf is C·(b−a) in units of 1/(2·scale): half of Sum's when lo ≥ 0, the same when
// lo = −hi, never more. Then mean = ((a+b) + T/N)/(2·scale). The released value uses T̃ and
// max(Ñ, 1) and is clamped to [lo, hi] (post-processing).
//
// Confidence interval. Let I_T and I_N be the library's intervals for T and N at level
// (1+c)/2 each. Each misses with probability at most (1−c)/2, so both hold with probability at
// least c (union bound; the noises are independent, so this is conservative). A group with a
// mean has N ≥ 1, so on that event N ∈ [max(N₁, 1), N₂] and T ∈ [T₁, T₂], and T/N lies between
// min(T₁/N₂, T₁/N₁) and max(T₂/N₁, T₂/N₂) (the quotient of intervals with a positive
// denominator; the minimum divides by N₂ when T₁ ≥ 0, by N₁ otherwise, and symmetrically for
// the maximum). The interval is mapped through ((a+b) + ·)/(2·scale), which gives an interval
// for the mean of the scaled values, then widened by a few float64 roundings and by 1/scale:
// the engine rounds each person's scaled total once per group, by at most ½, and each person
// so rounded adds at least one row to N, so rounding moves the mean by at most 1/(2·scale);
// the widened interval also covers the mean of the clamped values (each person's mean,
// weighted by the rows kept), the bounded pre-noise aggregate. That mean lies in [lo, hi],
// so clamping to [lo, hi] keeps the coverage. If N₂ < 1 the event says the group is empty
// and the interval is [lo, hi].
//
// # Variance
//
// From Ñ, S̃ = noisy Σs and Q̃ = noisy Σs² (three budgets), with n = max(Ñ, 1):
// mean = S̃/(scale·n) clamped to [lo, hi], mean of squares = Q̃/(scale²·n) clamped to the range
// of x² over [lo, hi], variance = mean of squares − mean², clamped to [0, ((hi−lo)/2)²]
// (Popoviciu: no distribution on [lo, hi] has a larger variance). The sample variance
// multiplies by n'/(n'−1) with n' = max(Ñ, 2), so it may reach ((hi−lo)/2)²·n'/(n'−1), the
// bound for a sample. StdDev is the square root.
//
// Confidence interval (VarianceInterval; docs/privacy.md derives it in full). The library's
// intervals for N, S and Q at level 1 − (1−c)/3 each all hold with probability ≥ c (union
// bound): the event E. θ(N, S, Q) = (Q/N − S²/N²)/scale² (times N/(N−1)) is, for fixed N,
// increasing in Q and decreasing in |S|, so its maximum over the box has Q = Q₂ and S the
// point of I_S nearest 0, its minimum Q = max(Q₁, 0) and S the end of I_S farthest from 0;
// over N ∈ [max(N₁, 1 or 2), N₂] each is taken at the ends or at the stationary points
// (N = 2S²/Q; for the sample form the roots of QN² − 2S²N + S² = 0). Rounding each person's
// totals once per group puts θ within 2M/scale + 2/scale² of the variance of the bounded values
// (M = max(|lo|, |hi|)), and the range is widened by that; the upper end is capped by the
// Bhatia–Davis bound (hi − μ)(μ − lo), maximised over the mean's interval (the quotient of
// I_S by I_N, widened by 1/scale). On E the result holds the variance of the bounded values:
// the clamped values, each person's weighted to count as the rows kept for them. Variance
// widens it to hold the released value; StdDev takes square roots. A box that allows no row
// (fewer than two for the sample form) or no data gives the whole range.
//
// Variance takes the sums as the engine computes them and does not centre them itself.
// The query engine centres the values first (it passes x − (lo+hi)/2 with the bounds
// shifted alike, which leaves the variance unchanged), so that the LInf of Σs² is
// C·((hi−lo)/2)² rather than C·max(lo², hi²): for ranges far from zero (years, for
// instance) that is most of the noise.
//
// # Quantiles
//
// The tree mechanism of dpagg.BoundedQuantiles: a tree of branching factor B and height H
// whose B^H leaves split [lo, hi] into equal buckets; each row adds 1 to the one node per
// level that holds its value. The engine computes the exact bounded count of every non-empty
// node in SQL (NodeSQL gives each row's node at each level, and NodeOf is the same formula in
// Go). Quantiles descends from the root: at each visited node it noises the B children's
// counts (once each, memoized), drops children under 0.75% of the noisy total, and moves into
// the child where the cumulative share reaches the rank, rescaling the rank inside it; at the
// leaf it interpolates linearly. Ranks are clamped to [0.005, 0.995] as in the library, and
// the outputs are made monotone in rank (running maximum) and clamped to [lo, hi].
//
// Sensitivity: a person with at most C rows in each of at most G groups adds 1 to one node
// per level for each row, so L1 ≤ H·G·C. At one level of one group their changes are
// non-negative and sum to at most C, so their squares sum to at most C² (all C rows in one
// node); over H levels and G groups, L2 ≤ C·√(H·G). The library's L0 = H·G and LInf = C
// give exactly L1 = L0·LInf and L2 = LInf·√L0, for Laplace and Gaussian alike. Noising only
// the visited nodes costs nothing extra: each noisy node count is a function of its own exact
// count, and the set of visited nodes is a function of noisy counts only (post-processing of
// the full noisy tree, of which dp materialises the part it reads).
//
// Buckets: leaf = ⌊(v − lo)/(hi − lo)·B^H⌋ clamped to [0, B^H − 1] in float64 (the library's
// formula, with hi in the last leaf), and the node at level ℓ is leaf / B^(H−ℓ) in integer
// division, so levels nest exactly for any B. NodeSQL writes the same operations in the same
// order, with lo and hi − lo as exact DOUBLE literals; DuckDB's IEEE double arithmetic then
// gives the same integer. NaN sorts above every number in DuckDB's greatest and least, so it
// lands in the last leaf in both.
//
// # Partition selection
//
// When a group key has no public domain, whether a group appears depends on who is in it.
// KeepPartition applies dpagg.PreAggSelectPartition to the number of distinct persons: for
// maxGroups ≤ 3 the optimal rule of Desfontaines, Voss, Gipson and Mandayam ("Differentially
// private partition selection", 2020), for larger maxGroups a Gaussian-noised count against a
// threshold. It needs δ > 0: with 1 person a group is kept with probability at most
// δ/maxGroups either way.
// It counts persons, never rows.
//
// # Confidence intervals
//
// Counts and sums use the library's ComputeConfidenceIntervalInt64 at α = 1 − confidence: the
// interval of the continuous noise distribution, rounded outward to integers, which covers the
// exact bounded aggregate with probability at least the confidence. Mean and Variance derive
// their intervals from those (above); QuantilesWithIntervals reads its own off the noisy tree.
// Quantiles alone gets none (CI = nil).
package dp
