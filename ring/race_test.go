//go:build race

package ring

// raceEnabled reports whether the race detector is on, which slows the
// property tests' loops several times over.
const raceEnabled = true
