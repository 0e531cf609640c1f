package synthesize

import (
	"errors"
	"fmt"
	"github.com/velo-fse/velo/dp"
	"math"
	"math/rand/v2"
	"slices"
)

// Options parametrise MST and AIM.
type Options struct {
	// MaxRowsPerPerson is the caller's bound k on the rows one person contributes to the
	// counts (1 when the data has one row per person). A person then changes every marginal
	// by at most k in L1 and in L2 norm (all k rows may fall in one cell), which is the
	// sensitivity of each measurement and of each selection score. 0 means 1.
	MaxRowsPerPerson int
	// Iterations of mirror descent for the final model (0: 1000).
	Iterations int
	// SelectionIterations of mirror descent for the intermediate models AIM and MST select
	// with (0: 250).
	SelectionIterations int

	// AIM only.
	// Workload is the list of attribute sets whose marginals the synthetic data should
	// reproduce (nil: all pairs of attributes).
	Workload [][]int
	// Rounds is AIM's T, the number of rounds its initial per-round budget is sized for
	// (0: 16 × attributes, as the paper).
	Rounds int
	// MaxModelCells caps the model size (sum of the cells of its junction tree's cliques);
	// 0 means 10,485,760 cells (80 MiB of float64, the paper's 80 MB).
	MaxModelCells float64

	noise randomness // nil: libraryNoise; tests only
}

func (o Options) k() float64 {
	if o.MaxRowsPerPerson <= 0 {
		return 1
	}
	return float64(o.MaxRowsPerPerson)
}

func (o Options) rnd() randomness {
	if o.noise == nil {
		return libraryNoise{}
	}
	return o.noise
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// Step records one mechanism the synthesizer ran, for the ledger and the release notes.
type Step struct {
	Mechanism string   // "gaussian" (a measurement) or "exponential" (a selection)
	Attrs     []string // the marginal measured, or the marginal selected
	Sigma     float64  // gaussian: the standard deviation actually used
	Epsilon   float64  // exponential: its ε (probabilities ∝ exp(ε·q/(2Δ)))
	Rho       float64  // zCDP cost of this step
}

// Result is a fitted synthesizer: the noisy measurements, the model fitted to them, and the
// privacy accounting of every step.
type Result struct {
	Model        *Model
	Measurements []Measurement
	Steps        []Step
	RhoBudget    float64 // the ρ the synthesizer was given
	RhoSpent     float64 // Σ Steps[i].Rho ≤ RhoBudget

	// Compression is MST's merge of rare categories (nil for AIM): the model and the
	// measurements after the 1-way ones are over the compressed domain.
	Compression []AttributeCompression
	comp        *compression
}

// Epsilon is the ε that the spent ρ amounts to at δ (CDPEpsilon): at most the ε charged when
// the budget came from NewBudget(ε, δ).
func (r *Result) Epsilon(delta float64) float64 { return dp.CDPEpsilon(r.RhoSpent, delta) }

// Sample draws n rows over the source's domain: from the model, then, after MST's domain
// compression, each merged category replaced by one of its original categories uniformly at
// random. See Model.Sample for the randomness.
func (r *Result) Sample(n int, seed [32]byte) (*Table, error) {
	rng := rand.New(rand.NewChaCha8(seed))
	t, err := r.Model.sample(n, rng)
	if err != nil || r.comp == nil {
		return t, err
	}
	return r.comp.expand(t, rng), nil
}

// plannable is the budget the algorithms plan with: ρ less a relative 10⁻⁹, which absorbs the
// rounding of summing the steps' costs in floating point, so that Σ Steps[i].Rho ≤ ρ holds
// as computed, not only in exact arithmetic.
func plannable(rho float64) float64 { return rho * (1 - 1e-9) }

func checkInput(d Domain, rho float64, o Options) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if !(rho > 0) || math.IsInf(rho, 0) {
		return fmt.Errorf("synthesize: the zCDP budget rho must be positive and finite, got %v", rho)
	}
	if o.MaxRowsPerPerson < 0 {
		return fmt.Errorf("synthesize: MaxRowsPerPerson must be at least 1, got %d", o.MaxRowsPerPerson)
	}
	return nil
}

// measurer applies the Gaussian mechanism to the source's marginals and keeps the accounts.
type measurer struct {
	d     Domain
	src   Counts
	o     Options
	res   *Result
	exact map[string]*Factor // exact marginals read for selection scores (never released)
	// onCompressed: d and src are the compressed domain and counts (MST after compression)
	onCompressed bool
}

func errShape(d Domain, attrs []int) error {
	return fmt.Errorf("synthesize: the counts over %v do not have the domain's shape", d.names(attrs))
}

func key(attrs []int) string { return fmt.Sprint(attrs) }

func (ms *measurer) counts(attrs []int) (*Factor, error) {
	a := slices.Clone(attrs)
	slices.Sort(a)
	if f, ok := ms.exact[key(a)]; ok {
		return f, nil
	}
	want, err := NewFactor(ms.d, a)
	if err != nil {
		return nil, err
	}
	f, err := ms.src.Marginal(a)
	if err != nil {
		return nil, fmt.Errorf("synthesize: counting %v: %w", ms.d.names(a), err)
	}
	if !slices.Equal(f.Attrs, want.Attrs) || !slices.Equal(f.Shape, want.Shape) || len(f.Values) != len(want.Values) {
		return nil, errShape(ms.d, a)
	}
	ms.exact[key(a)] = f
	return f, nil
}

// measure releases the marginal over attrs with Gaussian noise of standard deviation at least
// sigma (in counts). Its L2 sensitivity is k, so its cost is k²/(2σ²) with σ the one used.
func (ms *measurer) measure(attrs []int, sigma float64) (Measurement, error) {
	f, err := ms.counts(attrs)
	if err != nil {
		return Measurement{}, err
	}
	noisy, used, err := ms.o.rnd().gaussian(f.Values, sigma)
	if err != nil {
		return Measurement{}, err
	}
	rho := dp.GaussianRho(ms.o.k(), used)
	m := Measurement{Attrs: f.Attrs, Noisy: &Factor{Attrs: f.Attrs, Shape: f.Shape, Values: noisy}, Sigma: used, Rho: rho, onCompressed: ms.onCompressed}
	ms.res.Measurements = append(ms.res.Measurements, m)
	ms.res.Steps = append(ms.res.Steps, Step{Mechanism: "gaussian", Attrs: ms.d.names(f.Attrs), Sigma: used, Rho: rho})
	ms.res.RhoSpent += rho
	return m, nil
}

// selectOne runs the exponential mechanism over candidates with scores q of sensitivity
// sens (already including k) at ε, and records it.
func (ms *measurer) selectOne(cands [][]int, q []float64, eps, sens float64) []int {
	i := exponentialMechanism(ms.o.rnd(), q, eps, sens)
	rho := ExponentialRho(eps)
	ms.res.Steps = append(ms.res.Steps, Step{Mechanism: "exponential", Attrs: ms.d.names(cands[i]), Epsilon: eps, Rho: rho})
	ms.res.RhoSpent += rho
	return cands[i]
}

func l1(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += math.Abs(a[i] - b[i])
	}
	return s
}

// MST is the synthesizer of McKenna, Miklau and Sheldon (2021), spending at most rho (zCDP):
// 0.3ρ on all 1-way marginals (Gaussian), 0.1ρ on selecting a maximum spanning tree of
// attribute pairs (d−1 exponential mechanisms, each scoring a pair by the L1 distance between
// its exact 2-way marginal and the independent model fitted to the noisy 1-ways), 0.6ρ on
// the selected 2-way marginals (Gaussian), then a model fitted to all measurements. The
// paper splits ρ in thirds; see mstOneWayShare for why Velo does not.
// MST's shares of ρ. The paper gives a third to each step. The selection's scores are L1
// distances in counts, which grow with the number of persons while the exponential
// mechanism's noise does not: at the sizes synthetic data is made from (thousands of
// persons) a third of the budget buys a tree that a tenth picks nearly as well, and the
// rest is better spent on the measurements, as AIM does (0.1 of each round to the
// selection, 0.9 to the measurement). Of the measurements' 0.9, the 2-way marginals get
// two thirds: the model is a tree fitted mostly to them (each contains its attributes'
// 1-way marginals), while the 1-ways serve the domain compression and the selection's
// model. Measured: bench/RESULTS.md, "Synthetic data with not_null columns".
const (
	mstOneWayShare    = 0.3
	mstSelectionShare = 0.1
	mstTwoWayShare    = 0.6
)

func MST(d Domain, src Counts, rho float64, o Options) (*Result, error) {
	if err := checkInput(d, rho, o); err != nil {
		return nil, err
	}
	res := &Result{RhoBudget: rho}
	ms := &measurer{d: d, src: src, o: o, res: res, exact: map[string]*Factor{}}
	k := o.k()
	n := len(d.Sizes)
	rho = plannable(rho)
	var fitMs []Measurement // the measurements the model is fitted to (compressed)
	fitDomain := d
	if n == 1 {
		m, err := ms.measure([]int{0}, dp.ZCDPSigma(k, rho))
		if err != nil {
			return nil, err
		}
		fitMs = append(fitMs, m)
	} else {
		// 1-ways: n marginals share 0.3ρ, each σ = k·√(n/(0.6ρ))
		sigma1 := dp.ZCDPSigma(k, rho*mstOneWayShare/float64(n))
		for a := range n {
			if _, err := ms.measure([]int{a}, sigma1); err != nil {
				return nil, err
			}
		}
		// compress: merge the categories with noisy counts below 3σ (post-processing)
		res.comp = newCompression(d, res.Measurements)
		res.Compression = res.comp.attrs
		for _, m := range res.Measurements {
			f, err := res.comp.foldOneWay(m)
			if err != nil {
				return nil, err
			}
			fitMs = append(fitMs, f)
		}
		cd := res.comp.comp
		ms = &measurer{d: cd, src: compressedCounts{src, res.comp}, o: o, res: res, exact: map[string]*Factor{}, onCompressed: true}
		m1, err := fit(cd, fitMs, nil, nil, fitOptions{iters: orDefault(o.SelectionIterations, 250)})
		if err != nil {
			return nil, err
		}
		// scores of every pair
		var pairs [][]int
		var scores []float64
		for a := range n {
			for b := a + 1; b < n; b++ {
				x, err := ms.counts([]int{a, b})
				if err != nil {
					return nil, err
				}
				est, err := m1.Project([]int{a, b})
				if err != nil {
					return nil, err
				}
				pairs = append(pairs, []int{a, b})
				scores = append(scores, l1(x.Values, est.Values))
			}
		}
		eps := ExponentialEpsilon(rho * mstSelectionShare / float64(n-1))
		comp := make([]int, n)
		for i := range comp {
			comp[i] = i
		}
		var tree [][]int
		for range n - 1 {
			var cands [][]int
			var q []float64
			for i, p := range pairs {
				if comp[p[0]] != comp[p[1]] {
					cands = append(cands, p)
					q = append(q, scores[i])
				}
			}
			e := ms.selectOne(cands, q, eps, k)
			tree = append(tree, e)
			from, to := comp[e[1]], comp[e[0]]
			for i := range comp {
				if comp[i] == from {
					comp[i] = to
				}
			}
		}
		sigma2 := dp.ZCDPSigma(k, rho*mstTwoWayShare/float64(n-1))
		for _, e := range tree {
			m, err := ms.measure(e, sigma2)
			if err != nil {
				return nil, err
			}
			fitMs = append(fitMs, m)
		}
	}
	if res.RhoSpent > res.RhoBudget {
		return nil, fmt.Errorf("synthesize: internal error: MST spent rho %v over its budget %v", res.RhoSpent, res.RhoBudget)
	}
	if res.comp != nil {
		fitDomain = res.comp.comp
	}
	model, err := fit(fitDomain, fitMs, nil, nil, fitOptions{iters: orDefault(o.Iterations, 1000)})
	if err != nil {
		return nil, err
	}
	res.Model = model
	return res, nil
}

// downwardClosure is every non-empty subset of every set in w, with AIM's weight: the number
// of attributes it shares with the workload's sets, summed.
func downwardClosure(w [][]int) ([][]int, []float64) {
	seen := map[string]bool{}
	var out [][]int
	for _, s := range w {
		for mask := 1; mask < 1<<len(s); mask++ {
			var sub []int
			for i, a := range s {
				if mask&(1<<i) != 0 {
					sub = append(sub, a)
				}
			}
			slices.Sort(sub)
			if !seen[key(sub)] {
				seen[key(sub)] = true
				out = append(out, sub)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b []int) int { return len(a) - len(b) })
	wts := make([]float64, len(out))
	for i, c := range out {
		for _, s := range w {
			wts[i] += float64(len(intersect(c, s)))
		}
	}
	return out, wts
}

// AIM is the adaptive, workload-aware synthesizer of McKenna, Mullins, Sheldon and Miklau
// (2022), spending at most rho (zCDP). See the package documentation.
func AIM(d Domain, src Counts, rho float64, o Options) (*Result, error) {
	if err := checkInput(d, rho, o); err != nil {
		return nil, err
	}
	n := len(d.Sizes)
	workload := o.Workload
	if workload == nil {
		for a := range n {
			for b := a + 1; b < n; b++ {
				workload = append(workload, []int{a, b})
			}
		}
		if n == 1 {
			workload = [][]int{{0}}
		}
	}
	for _, w := range workload {
		if _, err := NewFactor(d, w); err != nil {
			return nil, fmt.Errorf("synthesize: workload marginal %v: %w", w, err)
		}
	}
	cands, wts := downwardClosure(workload)
	maxCellsModel := o.MaxModelCells
	if maxCellsModel <= 0 {
		maxCellsModel = 80 * (1 << 20) / 8
	}
	res := &Result{RhoBudget: rho}
	ms := &measurer{d: d, src: src, o: o, res: res, exact: map[string]*Factor{}}
	k := o.k()
	rho = plannable(rho)
	T := float64(orDefault(o.Rounds, 16*n))
	// per-round budget: 0.9 of it to the measurement, 0.1 to the selection; unit-sensitivity σ
	sigmaU := math.Sqrt(T / (2 * 0.9 * rho))
	eps := math.Sqrt(8 * 0.1 * rho / T)
	rhoUsed := 0.0 // planned, in unit-sensitivity terms (the k² cancels: σ = k·σᵤ)
	var measured [][]int
	for a := range n {
		if _, err := ms.measure([]int{a}, k*sigmaU); err != nil {
			return nil, err
		}
		rhoUsed += 0.5 / (sigmaU * sigmaU)
		measured = append(measured, []int{a})
	}
	selIters := orDefault(o.SelectionIterations, 250)
	model, err := fit(d, res.Measurements, nil, nil, fitOptions{iters: selIters})
	if err != nil {
		return nil, err
	}
	for terminate := false; !terminate; {
		if rho-rhoUsed < 2*(0.5/(sigmaU*sigmaU)+eps*eps/8) {
			// last round: whatever the recorded steps leave (the actual σ of each
			// measurement is ≥ the planned one, so this is at least the planned remainder)
			remaining := rho - res.RhoSpent
			if remaining < 1e-6*rho {
				break
			}
			sigmaU = math.Sqrt(1 / (2 * 0.9 * remaining))
			eps = math.Sqrt(8 * 0.1 * remaining)
			terminate = true
		}
		rhoUsed += eps*eps/8 + 0.5/(sigmaU*sigmaU)
		sizeLimit := maxCellsModel * math.Min(1, rhoUsed/rho)
		var sc [][]int
		var q []float64
		maxW := 0.0
		for i, c := range cands {
			free := false
			for _, m := range measured {
				if isSubset(c, m) {
					free = true
					break
				}
			}
			if !free && modelCells(d, append(slices.Clone(measured), c)) > sizeLimit {
				continue
			}
			x, err := ms.counts(c)
			if err != nil {
				return nil, err
			}
			est, err := model.Project(c)
			if err != nil {
				return nil, err
			}
			bias := math.Sqrt(2/math.Pi) * k * sigmaU * float64(len(x.Values))
			sc = append(sc, c)
			q = append(q, wts[i]*(l1(x.Values, est.Values)-bias))
			maxW = math.Max(maxW, wts[i])
		}
		if len(sc) == 0 {
			return nil, errors.New("synthesize: no workload marginal fits within the model size cap")
		}
		cl := ms.selectOne(sc, q, eps, k*maxW)
		before, err := model.Project(cl)
		if err != nil {
			return nil, err
		}
		if _, err := ms.measure(cl, k*sigmaU); err != nil {
			return nil, err
		}
		measured = append(measured, cl)
		if model, err = fit(d, res.Measurements, nil, model, fitOptions{iters: selIters}); err != nil {
			return nil, err
		}
		after, err := model.Project(cl)
		if err != nil {
			return nil, err
		}
		if !terminate && l1(after.Values, before.Values) <= k*sigmaU*math.Sqrt(2/math.Pi)*float64(len(after.Values)) {
			sigmaU /= 2
			eps *= 2
		}
	}
	if res.RhoSpent > res.RhoBudget {
		return nil, fmt.Errorf("synthesize: internal error: AIM spent rho %v over its budget %v", res.RhoSpent, res.RhoBudget)
	}
	if model, err = fit(d, res.Measurements, nil, model, fitOptions{iters: orDefault(o.Iterations, 1000)}); err != nil {
		return nil, err
	}
	res.Model = model
	return res, nil
}
