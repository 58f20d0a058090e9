package store

// cmdIndex finds a command by name for Lookup, which every command goes
// through: an open-addressing table hashed on the name's bytes folded with
// |0x20 (which agrees on a letter's two cases), checked against the
// lowercase name, so that a lookup neither copies the name to lowercase
// nor hashes it as a Go map key. register fills it next to table, during
// package initialization; after that it is only read.
var cmdIndex [cmdIndexSize]*Command

const cmdIndexSize = 2048 // a power of two, at least twice the commands

// cmdHash hashes name as folded.
func cmdHash(name []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range name {
		h = (h ^ uint32(c|0x20)) * 16777619
	}
	return h
}

// indexCommand adds c, whose name is lowercase, to cmdIndex.
func indexCommand(c *Command) {
	if len(table) > cmdIndexSize/2 {
		panic("store: cmdIndexSize too small")
	}
	i := cmdHash([]byte(c.Name)) & (cmdIndexSize - 1)
	for cmdIndex[i] != nil {
		i = (i + 1) & (cmdIndexSize - 1)
	}
	cmdIndex[i] = c
}

// lookupIndexed is the command whose lowercase name is name in any case.
func lookupIndexed(name []byte) *Command {
	for i := cmdHash(name) & (cmdIndexSize - 1); ; i = (i + 1) & (cmdIndexSize - 1) {
		c := cmdIndex[i]
		if c == nil {
			return nil
		}
		if equalLower(name, c.Name) {
			return c
		}
	}
}

// equalLower reports whether name, lowercased (A-Z only), is lower.
func equalLower(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
