package memcache

// The binary protocol: not implemented yet.

func (c *Command) binaryIsWrite() bool { return true }

func (s *Store) execBinary(out []byte, cmd *Command, now int64) []byte { return out }

func (c *Command) appendBinaryRequest(dst []byte) []byte { return dst }

func appendBinaryError(out []byte, cmd *Command, err error) []byte { return out }

func appendBinaryFailure(out []byte, cmd *Command, msg string) []byte { return out }
