//go:build !race

package main

// eventDBRaceEnabled lets slow measurement tests skip under the race detector.
const eventDBRaceEnabled = false
