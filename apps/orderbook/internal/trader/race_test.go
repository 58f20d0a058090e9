//go:build race

package trader

const raceEnabled = true
