//go:build race

package dp_test

// raceEnabled skips the long statistical tests under the race detector, which slows the
// library's sampler by an order of magnitude and adds nothing to them.
const raceEnabled = true
