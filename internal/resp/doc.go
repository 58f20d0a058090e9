// Package resp is gomu's codec for RESP2, the Redis serialization protocol:
// a Reader that parses multibulk and inline commands, every complete one in
// a read, without allocating per command, and Append functions that build
// replies of every RESP2 type into a reusable buffer. It enforces limits on
// bulk length and argument count and reports violations as errors whose text
// is the reply Redis gives, so a server can send it before closing.
package resp
