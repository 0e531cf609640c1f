//go:build !race

package dp_test

const raceEnabled = false
