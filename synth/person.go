package synth

import (
	"math/rand/v2"
	"strings"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/pseudonymize"
)

// Sizes of the name and country lists. Codici fiscali are unique by construction: each
// person index maps, through a keyed permutation, to a distinct slot (surname, given name,
// day of the year, year within a five-year age band). Italian-born people read the slot's
// name pair from the Italian lists; foreign-born people read it as (foreign surname,
// foreign given name, country), which needs nSurnames*nGiven ==
// nForeignSurnames*nForeignGiven*nCountries. Two people then always differ in a name code,
// the birth date or the birthplace, and ingest's person count is exact.
const (
	nSurnames        = 96
	nGiven           = 60
	nForeignSurnames = 24
	nForeignGiven    = 20
	nCountries       = 12
	nAgeBands        = 20
	nDays            = 365 // no one is born on 29 February: it would break the slot arithmetic
	nSlots           = nSurnames * nGiven * nDays * 5
)

// MaxPersons bounds Config.Persons: it is within the slots for unique codici fiscali and
// fits the 7-digit progressive number of STP/ENI codes.
const MaxPersons = 10_000_000

var _ = [1]struct{}{}[nSurnames*nGiven-nForeignSurnames*nForeignGiven*nCountries] // sizes must agree
var _ = [1]struct{}{}[min(0, nSlots-MaxPersons)]                                  // enough slots

// idKind is what a person's records carry as the patient identifier.
type idKind uint8

const (
	kindCF      idKind = iota // a plain, valid codice fiscale
	kindOmocode               // a valid omocode variant of the person's code
	kindSTP
	kindENI
	kindTemporary
	kindBad // a codice fiscale with a wrong check letter: every record is quarantined
)

// person is one synthetic person; it lives only while its chunk is rendered.
type person struct {
	index     int
	id        uid
	female    bool
	foreign   bool
	surname   string
	given     string
	birth     day
	age       int // completed years at the start of the period
	region    int // index in fse.Regions
	comune    int // index in the region's Comuni
	asl       int // index in the region's ASLs
	birthCode string
	cf        string // the canonical code (for STP/ENI/temporary people too, unused)
	ident     string // what the records carry
	kind      idKind
	optOut    bool
	flags     uint8
}

// normal reports whether the person may carry deliberately bad or out-of-period records:
// opted-out and quarantined people never do, so ingest's outcome for each record is
// unambiguous whatever order it applies its rules in.
func (p *person) normal() bool { return !p.optOut && p.kind != kindBad }

// slot decodes the permuted person index.
func (pl *plan) slot(index int) (nameSlot, doy, yearOffset int) {
	k := int(pl.slots.apply(uint64(index)))
	yearOffset = k % 5
	k /= 5
	doy = k % nDays
	k /= nDays
	return k, doy, yearOffset
}

// mix64 is SplitMix64's finaliser.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// newPerson draws person index's identity. r has just been seeded for that person.
func (g *gen) newPerson(p *person, index int) {
	pl, r := g.plan, g.r
	*p = person{index: index}
	p.id = g.uid()
	nameSlot, doy, yearOffset := pl.slot(index)
	p.female = r.Float64() < 0.51
	band := pl.ageBands.pick(r)
	p.age = 5*band + yearOffset
	p.birth = civilDayOfYear(pl.fromYear-1-p.age, doy)

	p.region = pl.regions.pick(r)
	reg := &fse.Regions[p.region]
	p.comune = pl.comuni[p.region].pick(r)
	p.asl = r.IntN(len(reg.ASLs))

	e := nameSlot % nCountries
	if r.Float64() < pl.foreignP[e] {
		p.foreign = true
		rest := nameSlot / nCountries
		p.surname = foreignSurnames[rest/nForeignGiven]
		if p.female {
			p.given = foreignFemaleNames[rest%nForeignGiven]
		} else {
			p.given = foreignMaleNames[rest%nForeignGiven]
		}
		p.birthCode = countries[e].Belfiore
	} else {
		p.surname = surnames[nameSlot/nGiven]
		if p.female {
			p.given = femaleNames[nameSlot%nGiven]
		} else {
			p.given = maleNames[nameSlot%nGiven]
		}
		br := p.region
		if r.Float64() < 0.15 { // born elsewhere in Italy
			br = pl.regions.pick(r)
		}
		p.birthCode = fse.Regions[br].Comuni[pl.comuni[br].pick(r)].Belfiore
	}
	p.cf = codiceFiscale(p.surname, p.given, p.birth, p.female, p.birthCode)
	p.ident = p.cf

	switch u := r.Float64(); {
	case u < 0.005:
		p.kind = kindOmocode
		p.ident = mustOmocode(p.cf, omocodeDepth(r))
	case u < 0.0065:
		p.kind = kindSTP
		p.ident = "STP" + pl.foreignerCode(index, reg, p.asl)
	case u < 0.008:
		p.kind = kindENI
		p.ident = "ENI" + pl.foreignerCode(index, reg, p.asl)
	case u < 0.009:
		p.kind = kindTemporary
		ten := digits(pl.temporary.apply(uint64(index)), 10)
		p.ident = ten + string(pseudonymize.TemporaryCheckDigit(ten))
	case u < 0.013:
		p.kind = kindBad
		b := []byte(p.cf)
		b[15] = byte('A' + (int(b[15]-'A')+1+r.IntN(25))%26)
		p.ident = string(b)
	}
	p.optOut = p.kind != kindBad && r.Float64() < 0.01
}

// omocodeDepth draws how many digits omocodia replaced: one, rarely two or three.
func omocodeDepth(r *rand.Rand) int {
	switch u := r.Float64(); {
	case u < 0.8:
		return 1
	case u < 0.95:
		return 2
	}
	return 3
}

func mustOmocode(cf string, n int) string {
	v, err := pseudonymize.Omocode(cf, n)
	if err != nil {
		panic("synth: omocode of a generated code: " + err.Error())
	}
	return v
}

// foreignerCode is the 13 digits of an STP/ENI code: region, ASL, and a progressive
// number unique per person.
func (pl *plan) foreignerCode(index int, reg *fse.Region, asl int) string {
	return reg.Code + reg.ASLs[asl][3:] + digits(pl.progressive.apply(uint64(index)), 7)
}

// civilDayOfYear returns day doy (0-based, February 29 skipped) of year y.
func civilDayOfYear(y, doy int) day {
	m := 1
	for m < 12 && doy >= monthDays[m-1] {
		doy -= monthDays[m-1]
		m++
	}
	return civilDay(y, m, doy+1)
}

var monthDays = [12]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

const monthLetters = "ABCDEHLMPRST"

// codiceFiscale builds a valid code from its parts (docs/domain.md#the-codice-fiscale).
func codiceFiscale(surname, given string, birth day, female bool, place string) string {
	b := make([]byte, 0, 16)
	b = append(b, surnameCode(surname)...)
	b = append(b, givenCode(given)...)
	y, m, d := birth.civil()
	b = append2(b, y%100)
	b = append(b, monthLetters[m-1])
	if female {
		d += 40
	}
	b = append2(b, d)
	b = append(b, place...)
	ch, err := pseudonymize.CheckLetter(string(b))
	if err != nil {
		panic("synth: check letter of a generated code: " + err.Error())
	}
	return string(append(b, ch))
}

func splitLetters(s string) (cons, vow []byte) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c < 'A' || c > 'Z' {
			continue
		}
		if strings.IndexByte("AEIOU", c) >= 0 {
			vow = append(vow, c)
		} else {
			cons = append(cons, c)
		}
	}
	return cons, vow
}

func surnameCode(s string) string {
	cons, vow := splitLetters(s)
	return string(append(append(cons, vow...), 'X', 'X', 'X')[:3])
}

func givenCode(s string) string {
	cons, vow := splitLetters(s)
	if len(cons) >= 4 {
		return string([]byte{cons[0], cons[2], cons[3]})
	}
	return string(append(append(cons, vow...), 'X', 'X', 'X')[:3])
}

// perm is a keyed pseudo-random permutation of [0, mod): a 4-round Feistel network on
// the smallest even number of bits that covers mod, restricted to [0, mod) by cycle
// walking. It gives identifiers that must be unique (person slots, booking ids, NRE
// numbers, STP progressives) a random look without remembering the ones already used.
type perm struct {
	half uint
	mod  uint64
	keys [4]uint64
}

func newPerm(seed, mod uint64) perm {
	p := perm{mod: mod}
	for uint64(1)<<(2*p.half) < mod {
		p.half++
	}
	for i := range p.keys {
		p.keys[i] = mix64(seed + uint64(i+1)*0x9e3779b97f4a7c15)
	}
	return p
}

// apply maps x, which must be below mod, to its image.
func (p perm) apply(x uint64) uint64 {
	mask := uint64(1)<<p.half - 1
	for {
		l, r := x>>p.half, x&mask
		for _, k := range p.keys {
			l, r = r, l^mix64(k^r)&mask
		}
		x = l<<p.half | r
		if x < p.mod {
			return x
		}
	}
}

// digits renders v with exactly n digits, zero-padded.
func digits(v uint64, n int) string {
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b)
}
