package memcache

// The meta protocol (mg, ms, md, ma, mn, me): not implemented yet.

func (p *Parser) meta(cmd *Command, toks [][]byte) error { return ErrUnknownCommand }

func (c *Command) metaIsWrite() bool { return true }

func (s *Store) execMeta(out []byte, cmd *Command, now int64) []byte { return out }
