package store

// Placeholders so the package builds while the data types are written;
// lists.go, hashes.go, sets.go and zsets.go replace them.
type (
	listValue struct{}
	hashValue struct{}
	setValue  struct{}
	zsetValue struct{}
)
