//go:build !race

package trader

const raceEnabled = false
