package store

import (
	"reflect"

	lua "github.com/yuin/gopher-lua"
)

// Lua 5.1 names the culprit of a failed call, index, arithmetic, length or
// concatenation from the bytecode ("attempt to call local 'f' (a nil
// value)", "attempt to index field 'x' (a nil value)"); gopher-lua says
// neither. culpritName finds the same name in gopher-lua's bytecode, which
// follows Lua 5.1's: the instruction that failed, and what last set the
// register it used. The instruction is the frame's (read through
// reflection: gopher-lua does not export it), else told from the others
// of its line; when it cannot be, the error stays unnamed, as Lua leaves
// a temporary's. Only error paths come here.

// gopher-lua's instruction layout (Lua 5.1's fields, its own order).
func opCode(i uint32) int { return int(i >> 26) }
func opA(i uint32) int    { return int(i>>18) & 0xff }
func opB(i uint32) int    { return int(i & 0x1ff) }
func opC(i uint32) int    { return int(i>>9) & 0x1ff }
func opBx(i uint32) int   { return int(i & 0x3ffff) }

// opConstBit marks an RK operand that is a constant's index.
const opConstBit = 1 << 8

// luaOp is the kind of operation that failed on a value.
type luaOp int

const (
	opCall luaOp = iota
	opIndex
	opArith
	opLength
	opConcat
)

// luaCulprit describes the failing operation for culpritName.
type luaCulprit struct {
	op luaOp
	// name: a call's callee as gopher-lua recorded it, if it did.
	name string
	// key: an index's key.
	key lua.LValue
	// operand: which of an arithmetic or concatenation's two operands
	// is at fault (0, the left).
	operand int
}

// culpritName returns the kind ("local", "global", "field", "upvalue",
// "method") and name of the value the running Lua code failed on, or ""
// when Lua would give none.
func culpritName(L *lua.LState, c luaCulprit) (kind, name string) {
	dbg, ok := L.GetStack(1)
	if !ok {
		return "", ""
	}
	fn, err := L.GetInfo("lf", dbg, nil)
	f, isFn := fn.(*lua.LFunction)
	if err != nil || !isFn || f.Proto == nil || dbg.CurrentLine <= 0 {
		return "", ""
	}
	p := f.Proto
	if pc, ok := framePc(dbg); ok && pc < len(p.Code) && c.match(p, pc, p.Code[pc]) != matchNone {
		return registerName(p, pc, c.register(p, pc, p.Code[pc]), 0)
	}
	// Else the candidates of the line: sure ones (a call, or an index by
	// the very constant key), else likely ones (an index by a register).
	var sure, likely []int
	for i, inst := range p.Code {
		if i >= len(p.DbgSourcePositions) || p.DbgSourcePositions[i] != dbg.CurrentLine {
			continue
		}
		switch c.match(p, i, inst) {
		case matchSure:
			sure = append(sure, i)
		case matchLikely:
			likely = append(likely, i)
		}
	}
	pcs := sure
	if len(pcs) == 0 {
		pcs = likely
	}
	if len(pcs) != 1 {
		return "", "" // none, or no telling which
	}
	return registerName(p, pcs[0], c.register(p, pcs[0], p.Code[pcs[0]]), 0)
}

type luaMatch int

const (
	matchNone luaMatch = iota
	matchLikely
	matchSure
)

// match tells whether instruction inst at pc may be the failing one.
func (c luaCulprit) match(p *lua.FunctionProto, pc int, inst uint32) luaMatch {
	op := opCode(inst)
	switch c.op {
	case opCall:
		if op != lua.OP_CALL && op != lua.OP_TAILCALL {
			return matchNone
		}
		if c.name != "" {
			for _, dc := range p.DbgCalls {
				if dc.Pc == pc && dc.Name != c.name {
					return matchNone
				}
			}
		}
		return matchSure
	case opArith:
		if op >= lua.OP_ADD && op <= lua.OP_UNM {
			return matchSure
		}
		return matchNone
	case opLength:
		if op == lua.OP_LEN {
			return matchSure
		}
		return matchNone
	case opConcat:
		if op == lua.OP_CONCAT {
			return matchSure
		}
		return matchNone
	}
	var key int
	switch op {
	case lua.OP_GETTABLE, lua.OP_GETTABLEKS, lua.OP_SELF:
		key = opC(inst)
	case lua.OP_SETTABLE, lua.OP_SETTABLEKS:
		key = opB(inst)
	default:
		return matchNone
	}
	if key&opConstBit == 0 {
		return matchLikely
	}
	if k := key &^ opConstBit; k < len(p.Constants) && constEqual(p.Constants[k], c.key) {
		return matchSure
	}
	return matchNone
}

// register is the register holding the culprit of instruction inst at pc,
// -1 when it is in none Lua would name (a constant operand) or which one
// is not known.
func (c luaCulprit) register(p *lua.FunctionProto, pc int, inst uint32) int {
	switch opCode(inst) {
	case lua.OP_GETTABLE, lua.OP_GETTABLEKS, lua.OP_SELF, lua.OP_LEN, lua.OP_UNM:
		return opB(inst)
	case lua.OP_ADD, lua.OP_SUB, lua.OP_MUL, lua.OP_DIV, lua.OP_MOD, lua.OP_POW:
		rk := opB(inst)
		if c.operand == 1 {
			rk = opC(inst)
		}
		if rk&opConstBit != 0 {
			return -1
		}
		return rk
	case lua.OP_CONCAT:
		return c.concatRegister(p, pc, opB(inst), opC(inst))
	}
	return opA(inst) // a call's function, a table write's table
}

// concatRegister is the culprit's register of a concatenation of R(b) ..
// R(c). Both Lua and gopher-lua join from the right, so a culprit on the
// right of the failing pair is R(c) itself (the pairs after the first
// have a joined string on the right); one on the left is the only operand
// left of R(c) not loaded from a constant, if only one is.
func (c luaCulprit) concatRegister(p *lua.FunctionProto, pc, b, last int) int {
	if c.operand == 1 {
		return last
	}
	found := -1
	for r := b; r < last; r++ {
		if w := lastWriter(p, pc, r); w >= 0 && opCode(p.Code[w]) == lua.OP_LOADK {
			continue
		}
		if found >= 0 {
			return -1
		}
		found = r
	}
	return found
}

// registerName is Lua 5.1's getobjname: the local living in reg at pc, or
// what the last instruction before pc to set reg read.
func registerName(p *lua.FunctionProto, pc, reg, depth int) (string, string) {
	if reg < 0 {
		return "", ""
	}
	if name := localName(p, reg, pc); name != "" {
		return "local", name
	}
	if depth > 8 {
		return "", ""
	}
	last := lastWriter(p, pc, reg)
	if last < 0 {
		return "", ""
	}
	inst := p.Code[last]
	switch opCode(inst) {
	case lua.OP_GETGLOBAL:
		if s, ok := constString(p, opBx(inst)); ok {
			return "global", s
		}
	case lua.OP_MOVE, lua.OP_MOVEN:
		if b := opB(inst); b < opA(inst) {
			return registerName(p, last, b, depth+1)
		}
	case lua.OP_GETTABLE, lua.OP_GETTABLEKS:
		return "field", rkName(p, opC(inst))
	case lua.OP_GETUPVAL:
		if b := opB(inst); b < len(p.DbgUpvalues) {
			return "upvalue", p.DbgUpvalues[b]
		}
		return "upvalue", "?"
	case lua.OP_SELF:
		if reg == opA(inst) {
			return "method", rkName(p, opC(inst))
		}
	}
	return "", ""
}

// lastWriter is the last instruction before pc to set reg (-1: none),
// in the code's order (Lua follows forward jumps; this does not).
func lastWriter(p *lua.FunctionProto, pc, reg int) int {
	last := -1
	for i := 0; i < pc; i++ {
		if setsRegister(p.Code[i], reg) {
			last = i
		}
	}
	return last
}

// localName is Lua 5.1's luaF_getlocalname: the name of the reg-th local
// alive at pc.
func localName(p *lua.FunctionProto, reg, pc int) string {
	n := reg + 1
	for _, l := range p.DbgLocals {
		if l.StartPc > pc {
			break
		}
		if pc < l.EndPc {
			if n--; n == 0 {
				return l.Name
			}
		}
	}
	return ""
}

// setsRegister reports whether inst writes reg.
func setsRegister(inst uint32, reg int) bool {
	a := opA(inst)
	switch opCode(inst) {
	case lua.OP_MOVE, lua.OP_MOVEN, lua.OP_LOADK, lua.OP_LOADBOOL, lua.OP_GETUPVAL, lua.OP_GETGLOBAL,
		lua.OP_GETTABLE, lua.OP_GETTABLEKS, lua.OP_NEWTABLE, lua.OP_ADD, lua.OP_SUB, lua.OP_MUL, lua.OP_DIV,
		lua.OP_MOD, lua.OP_POW, lua.OP_UNM, lua.OP_NOT, lua.OP_LEN, lua.OP_CONCAT, lua.OP_TESTSET, lua.OP_CLOSURE:
		return reg == a
	case lua.OP_LOADNIL:
		return a <= reg && reg <= opB(inst)
	case lua.OP_SELF:
		return reg == a || reg == a+1
	case lua.OP_CALL, lua.OP_TAILCALL, lua.OP_VARARG, lua.OP_TFORLOOP:
		return reg >= a
	case lua.OP_FORLOOP, lua.OP_FORPREP:
		return a <= reg && reg <= a+3
	}
	return false
}

// rkName is Lua 5.1's kname: a constant string operand, else "?".
func rkName(p *lua.FunctionProto, rk int) string {
	if rk&opConstBit != 0 {
		if s, ok := constString(p, rk&^opConstBit); ok {
			return s
		}
	}
	return "?"
}

func constString(p *lua.FunctionProto, i int) (string, bool) {
	if i < len(p.Constants) {
		if s, ok := p.Constants[i].(lua.LString); ok {
			return string(s), true
		}
	}
	return "", false
}

// framePc is the index of the instruction the frame of dbg is running
// (gopher-lua's callFrame.Pc has moved past it).
func framePc(dbg *lua.Debug) (int, bool) {
	frame := reflect.ValueOf(dbg).Elem().FieldByName("frame")
	if frame.Kind() != reflect.Pointer || frame.IsNil() {
		return 0, false
	}
	pc := frame.Elem().FieldByName("Pc")
	if pc.Kind() != reflect.Int || pc.Int() < 1 {
		return 0, false
	}
	return int(pc.Int()) - 1, true
}

func constEqual(a, b lua.LValue) bool {
	return a.Type() == b.Type() && a.String() == b.String()
}
