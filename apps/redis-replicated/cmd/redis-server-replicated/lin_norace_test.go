//go:build !race

package main

// linRace: see lin_race_test.go.
const linRace = false
