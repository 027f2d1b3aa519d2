// Package formula evaluates fail2ban's bantime.formula expressions safely.
package formula

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Formula is a compiled bantime.formula: the small Python expression language fail2ban documents
// for escalation ("ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor",
// "ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)"). It is evaluated
// by a tree walker over numbers, the variables ban.Time, ban.Count and banFactor, arithmetic,
// shifts, comparisons, "a if c else b", and a fixed list of math functions — never as code.
type Formula struct {
	root node
	text string
}

// Vars are the values a formula can read.
type Vars struct {
	Time   float64 // the jail's bantime in seconds
	Count  float64 // previous bans of the address
	Factor float64 // bantime.factor
}

// Default is fail2ban's default bantime.formula.
const Default = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor"

type node interface {
	eval(v *Vars) (float64, error)
}

type num float64

func (n num) eval(*Vars) (float64, error) { return float64(n), nil }

type variable string

func (x variable) eval(v *Vars) (float64, error) {
	switch x {
	case "ban.Time":
		return v.Time, nil
	case "ban.Count":
		return v.Count, nil
	case "banFactor":
		return v.Factor, nil
	}
	return 0, fmt.Errorf("unknown name %q", string(x))
}

type binary struct {
	op   string
	l, r node
}

func (b *binary) eval(v *Vars) (float64, error) {
	l, err := b.l.eval(v)
	if err != nil {
		return 0, err
	}
	r, err := b.r.eval(v)
	if err != nil {
		return 0, err
	}
	truth := func(c bool) float64 {
		if c {
			return 1
		}
		return 0
	}
	switch b.op {
	case "+":
		return l + r, nil
	case "-":
		return l - r, nil
	case "*":
		return l * r, nil
	case "/":
		if r == 0 {
			return 0, fmt.Errorf("division by zero")
		}
		return l / r, nil
	case "//":
		if r == 0 {
			return 0, fmt.Errorf("division by zero")
		}
		return math.Floor(l / r), nil
	case "%":
		if r == 0 {
			return 0, fmt.Errorf("division by zero")
		}
		return l - r*math.Floor(l/r), nil
	case "**":
		return math.Pow(l, r), nil
	case "<<":
		if r < 0 || r > 62 {
			return 0, fmt.Errorf("shift by %v", r)
		}
		return l * math.Pow(2, math.Floor(r)), nil
	case ">>":
		if r < 0 || r > 62 {
			return 0, fmt.Errorf("shift by %v", r)
		}
		return math.Floor(l / math.Pow(2, math.Floor(r))), nil
	case "<":
		return truth(l < r), nil
	case "<=":
		return truth(l <= r), nil
	case ">":
		return truth(l > r), nil
	case ">=":
		return truth(l >= r), nil
	case "==":
		return truth(l == r), nil
	case "!=":
		return truth(l != r), nil
	case "and":
		return truth(l != 0 && r != 0), nil
	case "or":
		return truth(l != 0 || r != 0), nil
	}
	return 0, fmt.Errorf("unknown operator %q", b.op)
}

type neg struct{ x node }

func (n neg) eval(v *Vars) (float64, error) {
	x, err := n.x.eval(v)
	return -x, err
}

type cond struct{ yes, test, no node }

func (c *cond) eval(v *Vars) (float64, error) {
	t, err := c.test.eval(v)
	if err != nil {
		return 0, err
	}
	if t != 0 {
		return c.yes.eval(v)
	}
	return c.no.eval(v)
}

type call struct {
	fn   string
	args []node
}

var formulaFuncs = map[string]func(a []float64) (float64, error){
	"math.exp":   one(math.Exp),
	"math.log":   one(math.Log),
	"math.sqrt":  one(math.Sqrt),
	"math.ceil":  one(math.Ceil),
	"math.floor": one(math.Floor),
	"float":      one(func(x float64) float64 { return x }),
	"int":        one(math.Trunc),
	"abs":        one(math.Abs),
	"round":      one(math.RoundToEven),
	"math.pow":   two(math.Pow),
	"min":        many(math.Min),
	"max":        many(math.Max),
}

func one(f func(float64) float64) func([]float64) (float64, error) {
	return func(a []float64) (float64, error) {
		if len(a) != 1 {
			return 0, fmt.Errorf("takes one argument")
		}
		return f(a[0]), nil
	}
}

func two(f func(float64, float64) float64) func([]float64) (float64, error) {
	return func(a []float64) (float64, error) {
		if len(a) != 2 {
			return 0, fmt.Errorf("takes two arguments")
		}
		return f(a[0], a[1]), nil
	}
}

func many(f func(float64, float64) float64) func([]float64) (float64, error) {
	return func(a []float64) (float64, error) {
		if len(a) == 0 {
			return 0, fmt.Errorf("takes arguments")
		}
		r := a[0]
		for _, x := range a[1:] {
			r = f(r, x)
		}
		return r, nil
	}
}

func (c *call) eval(v *Vars) (float64, error) {
	args := make([]float64, len(c.args))
	for i, a := range c.args {
		x, err := a.eval(v)
		if err != nil {
			return 0, err
		}
		args[i] = x
	}
	r, err := formulaFuncs[c.fn](args)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", c.fn, err)
	}
	return r, nil
}

// Compile parses a bantime.formula.
func Compile(s string) (*Formula, error) {
	p := &parser{toks: tokenize(s)}
	n, err := p.ternary()
	if err != nil {
		return nil, fmt.Errorf("bantime.formula %q: %w", s, err)
	}
	if p.i != len(p.toks) {
		return nil, fmt.Errorf("bantime.formula %q: unexpected %q", s, p.toks[p.i])
	}
	f := &Formula{root: n, text: s}
	// Check it evaluates, so a broken formula is a configuration error, not a runtime one.
	if _, err := f.Eval(Vars{Time: 600, Count: 1, Factor: 1}); err != nil {
		return nil, fmt.Errorf("bantime.formula %q: %w", s, err)
	}
	return f, nil
}

// Eval computes the formula.
func (f *Formula) Eval(v Vars) (float64, error) {
	r, err := f.root.eval(&v)
	if err == nil && (math.IsNaN(r) || math.IsInf(r, 0)) {
		err = fmt.Errorf("not a finite number")
	}
	return r, err
}

func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			for _, op := range []string{"**", "//", "<<", ">>", "<=", ">=", "==", "!="} {
				if strings.HasPrefix(s[i:], op) {
					toks = append(toks, op)
					i += 2
					goto next
				}
			}
			toks = append(toks, string(c))
			i++
		next:
		}
	}
	return toks
}

type parser struct {
	toks []string
	i    int
}

func (p *parser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	p.i++
	return t
}

// Precedence from low to high: if/else, or, and, comparisons, shifts, + -, * / // %, unary -, **.
func (p *parser) ternary() (node, error) {
	yes, err := p.binary(0)
	if err != nil {
		return nil, err
	}
	if p.peek() != "if" {
		return yes, nil
	}
	p.next()
	test, err := p.binary(0)
	if err != nil {
		return nil, err
	}
	if p.next() != "else" {
		return nil, fmt.Errorf("'if' without 'else'")
	}
	no, err := p.ternary()
	if err != nil {
		return nil, err
	}
	return &cond{yes: yes, test: test, no: no}, nil
}

var levels = [][]string{{"or"}, {"and"}, {"<", "<=", ">", ">=", "==", "!="}, {"<<", ">>"}, {"+", "-"}, {"*", "/", "//", "%"}}

func (p *parser) binary(level int) (node, error) {
	if level == len(levels) {
		return p.unary()
	}
	l, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		found := false
		for _, o := range levels[level] {
			if op == o {
				found = true
			}
		}
		if !found {
			return l, nil
		}
		p.next()
		r, err := p.binary(level + 1)
		if err != nil {
			return nil, err
		}
		l = &binary{op: op, l: l, r: r}
	}
}

func (p *parser) unary() (node, error) {
	if p.peek() == "-" {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return neg{x}, nil
	}
	if p.peek() == "+" {
		p.next()
		return p.unary()
	}
	return p.power()
}

func (p *parser) power() (node, error) {
	base, err := p.atom()
	if err != nil {
		return nil, err
	}
	if p.peek() == "**" {
		p.next()
		exp, err := p.unary() // right-associative, binds tighter than unary minus on its left
		if err != nil {
			return nil, err
		}
		return &binary{op: "**", l: base, r: exp}, nil
	}
	return base, nil
}

func (p *parser) atom() (node, error) {
	t := p.next()
	switch {
	case t == "":
		return nil, fmt.Errorf("unexpected end")
	case t == "(":
		n, err := p.ternary()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, fmt.Errorf("missing ')'")
		}
		return n, nil
	case t[0] >= '0' && t[0] <= '9' || t[0] == '.':
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", t)
		}
		return num(f), nil
	case t == "ban.Time" || t == "ban.Count" || t == "banFactor":
		return variable(t), nil
	case p.peek() == "(":
		if _, ok := formulaFuncs[t]; !ok {
			return nil, fmt.Errorf("unknown function %q", t)
		}
		p.next()
		var args []node
		for p.peek() != ")" {
			a, err := p.ternary()
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			if p.peek() == "," {
				p.next()
			} else if p.peek() != ")" {
				return nil, fmt.Errorf("expected ',' or ')' in %s()", t)
			}
		}
		p.next()
		return &call{fn: t, args: args}, nil
	}
	return nil, fmt.Errorf("unknown name %q", t)
}
