// Package synthesize builds differentially private synthetic microdata from noisy marginals:
// the MST (McKenna, Miklau and Sheldon 2021) and AIM (McKenna, Mullins, Sheldon and Miklau
// 2022) synthesizers, with their zCDP accounting and its conversion to the (ε, δ) the ledger
// charges. It is pure Go: no SQL, no I/O. The caller (the engine) supplies the exact counts of
// the per-person-bounded data through Counts and receives a Result: the noisy measurements,
// the record of every mechanism run (Steps) and a Model to Sample rows from.
//
// # Data model
//
// A table of categorical attributes, each with a public finite domain (Domain; numeric
// columns binned by the caller with public edges). Marginals are dense contingency tables
// (Factor) over sorted attribute sets, with projection. The mechanisms read the data only as
// exact marginals (Counts.Marginal); which marginals they read is itself chosen by the
// mechanisms, never by the data directly.
//
// # Neighbours and sensitivity
//
// Neighbouring datasets add or remove one person with all their rows. The caller bounds each
// person to at most k rows (Options.MaxRowsPerPerson; 1 for one row per person). A person's k
// rows add c₁, …, c_m ≥ 0 to the cells of any one marginal, Σ cᵢ ≤ k, so the marginal changes
// by at most k in L1 and √(Σ cᵢ²) ≤ Σ cᵢ ≤ k in L2 (equality when all rows fall in one cell).
// Every measurement is therefore a Gaussian mechanism of L2 sensitivity k, and the L1 error
// ‖M(D) − x̂‖₁ of a marginal against any estimate x̂ that depends only on earlier noisy
// outputs changes by at most ‖M(D) − M(D′)‖₁ ≤ k (triangle inequality).
//
// # Accounting (zCDP)
//
//   - Gaussian mechanism, L2 sensitivity k, standard deviation σ: ρ = k²/(2σ²).
//   - Exponential mechanism, scores of sensitivity Δ, probabilities ∝ exp(ε·q/(2Δ)): ε-DP and
//     ε-bounded-range, hence ρ = ε²/8 (Cesar and Rogers 2021).
//   - Composition adds ρ, also when a step's parameters depend on earlier outputs as in AIM's
//     annealing, provided Σρ ≤ the budget on every run (a zCDP bound is a Rényi-DP bound ρα at
//     every order α, and the Rényi filter of Feldman and Zrnic 2021 holds at each α). Both
//     algorithms stop before the total could exceed the budget, and check Σ Steps[i].Rho ≤ ρ
//     (they plan with ρ·(1 − 10⁻⁹) so that the floating-point sum respects it too).
//   - Conversion: ρ-zCDP implies (ε, δ)-DP for δ = inf over α > 1 of
//     exp((α−1)(αρ−ε))/(α−1)·(1−1/α)^α (Canonne, Kamath and Steinke 2020, Prop. 7), the bound
//     Private-PGM's cdp2adp computes (package dp, which the engine's composition within a
//     query shares). dp.CDPDelta finds α by bisection on the exponent's
//     derivative (any α gives a valid δ); dp.CDPEpsilon and dp.CDPRho invert it by bisection,
//     rounding towards safety (dp.CDPDelta(ρ, dp.CDPEpsilon(ρ, δ)) ≤ δ and
//     dp.CDPDelta(dp.CDPRho(ε, δ), ε) ≤ δ). The tests check them against values computed with
//     50-digit arithmetic, against the values OpenDP's tests assert, and against an
//     independent grid search, and check that the exact
//     privacy profile of a Gaussian mechanism lies below the conversion.
//
// The ledger charges (ε, δ) and the synthesizer spends ρ = dp.CDPRho(ε, δ) (NewBudget).
//
// # MST
//
// With n attributes and budget ρ (and n ≥ 2): (1) the n 1-way marginals with σ = k·√(n/(0.6ρ))
// each (0.3ρ in all), after which each attribute's categories with a noisy count below 3σ are
// merged into one (domain compression, post-processing; Result.Compression); the rest runs on
// the compressed domain, whose marginals are sums of the original cells and so keep
// sensitivity k, and Result.Sample spreads a merged category uniformly over its original
// categories; (2) a model fitted to them (independent attributes), and n − 1
// exponential mechanisms, each at ε = √(8·0.1ρ/(n−1)) with Δ = k, picking among the pairs not
// yet connected the one whose exact 2-way marginal is furthest in L1 from the model's
// (Kruskal's algorithm with private choices: a maximum spanning tree on the pairs'
// dependence); (3) the n − 1 chosen 2-way marginals with σ = k·√((n−1)/(1.2ρ)) (0.6ρ in all);
// then the final model fitted to all 2n − 1 measurements. (The paper splits ρ in thirds; the
// selection needs less than a third at the sizes synthetic data is made from: mstOneWayShare.)
//
// # AIM
//
// The workload (default: all pairs of attributes; any sets, e.g. 3-way, may be given) is
// closed downwards into the candidates, each weighted by wᵣ = Σ over workload sets s of
// |r ∩ s|. With T = 16n rounds (Options.Rounds), AIM starts with σ = k·√(T/(2·0.9ρ)) and
// ε = √(8·0.1ρ/T), measures the n 1-way marginals at σ and fits a model. Each round: if less
// than two rounds' cost remains, it sizes the last round to use the remainder (0.9 to the
// measurement, 0.1 to the selection) and stops after it; it drops the candidates that would
// make the model's junction tree exceed the size cap scaled by the fraction of budget spent
// (unless already inside a measured set); it selects a candidate with the exponential
// mechanism on the score wᵣ·(‖Mᵣ(D) − Mᵣ(p̂)‖₁ − √(2/π)·σ·cellsᵣ) (the error minus the expected
// L1 size of the noise it would add), Δ = k·max wᵣ; measures it at σ; refits the model; and
// when the model's marginal moved by less than √(2/π)·σ·cellsᵣ in L1, halves σ and doubles ε
// (annealing: per-round cost ×4). The final model is refitted with more iterations.
//
// # Estimation (Private-PGM)
//
// The model is a graphical model on a junction tree of the measured sets: the graph joining
// attributes measured together is triangulated by greedy elimination (smallest elimination
// clique first), its maximal cliques linked by a maximum spanning tree on separator size. Its
// log-potentials θ are fitted by mirror descent with an Armijo line search (McKenna, Sheldon
// and Miklau 2019) to minimise Σᵣ ‖(μᵣ − yᵣ)/σᵣ‖²/2, where μ are the model's marginals,
// computed exactly by sum-product belief propagation in log space, scaled to the total
// estimated from all measurements (inverse-variance weighted). The model holds tables over its
// cliques only; AIM caps their total cells (Options.MaxModelCells, default 80 MiB of float64).
// Marginals across cliques are computed exactly by variable elimination on the tree.
//
// # Sampling
//
// Result.Sample draws rows from the model along the junction tree: each clique's new
// attributes given its separator, with the counts of each separator group rounded to the
// conditional distribution (Private-PGM's "round" method, lower variance than independent
// draws), then MST's merged categories spread back. The randomness is a ChaCha8 stream seeded
// by a caller-supplied 32-byte seed (crypto/rand in production). The model is a deterministic
// function of the noisy measurements and the selections (the junction tree and the fit use no
// randomness and do not read the data), so the rows depend on the data only through the
// released measurements: post-processing. Memory is the output, two int32 index arrays of
// one entry per row, and tables over the cliques. The number of rows must itself be public or
// noisy (the user's choice, or Model.Total, the noisy estimate): sampling as many rows as the
// source has would release its exact size.
//
// # Utility
//
// Result.Utility compares the synthetic rows with every noisy measurement (total-variation
// distance): post-processing, no budget.
//
// # Randomness
//
// Gaussian noise comes from github.com/google/differential-privacy/go/v3/noise (discretised,
// crypto/rand). The library calibrates σ from (ε, δ, L0, LInf) rather than taking σ; its
// calibration depends on σ/LInf only, so the package asks it for LInf = σ/σ₁ at a fixed
// reference (ε, δ) (σ₁ the library's σ for LInf = 1), recomputes the σ the library will use,
// raises LInf until that σ is at least the one wanted, and accounts for the σ used. The
// exponential mechanism draws one crypto/rand uniform and inverts the cumulative weights
// computed in float64.
//
// # What is and is not guaranteed
//
// Guaranteed, given that Counts returns the marginals of data in which each person has at most
// MaxRowsPerPerson rows: the Result (measurements, steps, model) and every sample drawn from it
// are ρ-zCDP for the ρ given, hence (ε, δ)-DP for (ε, δ) with dp.CDPRho(ε, δ) ≥ ρ. Errors depend
// on the domain and the parameters, not on the counts.
//
// Not guaranteed: utility (the tests check it on planted data); the exponential mechanism's
// sampling in floating point (unlike the Gaussian noise it is not discretised: a known,
// generally accepted gap, Ilvento 2020); timing (the line search's iterations and hence the
// running time depend on the measurements, and the exact scores on the data); that a
// synthetic row is not identical to a real one (DP bounds what the rows reveal about any
// person, not whether a plausible combination recurs).
package synthesize
