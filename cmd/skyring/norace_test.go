//go:build !race

package main_test

// raceEnabled reports that the test binary was built with -race, so TestMain
// builds the skyring binary with -race too.
const raceEnabled = false
