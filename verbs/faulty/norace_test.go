//go:build !race

package faulty_test

const raceEnabled = false
