package store

// crc64Jones is the CRC-64 Redis seals RDB files and DUMP payloads with
// (its crc64.c): the Jones polynomial 0xad93d23594c935a9, reflected input
// and output, initial value 0 and no final xor. The check value of
// "123456789" is 0xe9c6d914c4b8d9ca.

// crc64JonesReflected is the polynomial with its bits reversed, as a
// reflected (least significant bit first) table-driven CRC uses it.
const crc64JonesReflected = 0x95ac9329ac4bc9b5

var crc64Table = makeCRC64Table()

func makeCRC64Table() *[256]uint64 {
	var t [256]uint64
	for i := range t {
		c := uint64(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ crc64JonesReflected
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return &t
}

// crc64Update continues crc over p.
func crc64Update(crc uint64, p []byte) uint64 {
	for _, b := range p {
		crc = crc64Table[byte(crc)^b] ^ crc>>8
	}
	return crc
}
