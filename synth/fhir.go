package synth

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/velo-fse/velo/fse"
)

// Code systems and extensions the resources use beyond those in package fse.
const (
	systemRegionalID     = "urn:oid:2.16.840.1.113883.2.9.2.120.4.1" // a regional person registry (HL7 Italia: 2.16.840.1.113883.2.9.2.<region>.4.1)
	systemNRE            = "urn:oid:2.16.840.1.113883.2.9.4.3.8"
	systemNomenclatore   = "urn:oid:2.16.840.1.113883.2.9.6.1.11"
	systemActCode        = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	systemObsCategory    = "http://terminology.hl7.org/CodeSystem/observation-category"
	systemInterpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	extPriorityClass     = "http://velo.invalid/fhir/StructureDefinition/priority-class"
)

// gen renders people; each worker owns one.
type gen struct {
	plan  *plan
	pcg   *rand.PCG
	r     *rand.Rand
	out   *chunk
	p     person
	encs  []encounter
	conds []int
	nMeds int
	csv   csvRow
	cda   cdaGen // the person's facts as CDA renders them (cda.go); unused without CDA
}

func newGen(pl *plan) *gen {
	g := &gen{plan: pl, pcg: rand.NewPCG(0, 0)}
	g.r = rand.New(g.pcg)
	if pl.formats[FormatCDA] {
		g.cda.init()
	}
	return g
}

// render draws and writes the people of c.
func (g *gen) render(c *chunk) {
	g.out = c
	g.csv.reset(&c.data[fBookings])
	g.cdaStart()
	for i := c.first; i < c.first+c.n; i++ {
		g.person(i)
	}
	g.csv.flush()
	g.cdaFinish()
}

// person draws everything about one person from a generator seeded by the seed and the
// index alone; the order of draws below is part of the output format.
func (g *gen) person(index int) {
	g.pcg.Seed(g.plan.seedA, mix64(g.plan.seedB+uint64(index)*0x9e3779b97f4a7c15))
	p := &g.p
	g.newPerson(p, index)
	g.encs, g.conds, g.nMeds = g.encs[:0], g.conds[:0], 0
	g.cda.reset()

	c := g.out
	switch p.kind {
	case kindCF:
		c.idents.CodiceFiscale++
	case kindOmocode:
		c.idents.Omocode++
	case kindSTP:
		c.idents.STP++
	case kindENI:
		c.idents.ENI++
	case kindTemporary:
		c.idents.Temporary++
	case kindBad:
		c.idents.BadCheckLetter++
		c.faults.PatientBadCheckLetter++
	}

	start := len(c.data[fPatient])
	g.patient(p)
	var patientJSON []byte
	if index < g.plan.cfg.Bundles {
		patientJSON = append([]byte(nil), c.data[fPatient][start:len(c.data[fPatient])-1]...)
	}
	g.clinical(p)
	g.bookings(p)
	g.immunizations(p)
	g.optOut(p)
	if patientJSON != nil {
		g.bundle(p, patientJSON)
	}
	if g.cda.on {
		g.cdaDocuments(p)
	}
}

func (g *gen) uid() uid { return newUID(g.r.Uint64(), g.r.Uint64()) }

// count records one record of file f for person p with its main date.
func (g *gen) count(f int, p *person, malformed bool, date day) {
	o := &g.out.expected[f]
	o.Records++
	g.out.lines[f]++
	switch {
	case malformed || p.kind == kindBad:
		o.Quarantined++
	case p.optOut:
		o.OptedOut++
	case !g.plan.inPeriod(date):
		o.OutsidePeriod++
	}
}

// emit ends the line of file f.
func (g *gen) emit(f int, b []byte) { g.out.data[f] = append(b, '\n') }

// refStyle says how a resource references others: by "Type/id" in NDJSON, by fullUrl
// "urn:uuid:id" inside a Bundle.
type refStyle bool

const (
	refNDJSON refStyle = false
	refBundle refStyle = true
)

func appendRefStyle(b []byte, style refStyle, typ string, id *uid) []byte {
	if style == refBundle {
		b = append(b, `{"reference":"urn:uuid:`...)
		b = append(b, id[:]...)
		return append(b, `"}`...)
	}
	return appendRef(b, typ, id)
}

func (g *gen) patient(p *person) {
	r := g.r
	reg := &fse.Regions[p.region]
	cm := &reg.Comuni[p.comune]
	b := g.out.data[fPatient]
	b = append(b, `{"resourceType":"Patient","id":"`...)
	b = append(b, p.id[:]...)
	b = append(b, `","identifier":[{"system":"`+fse.SystemCodiceFiscale+`","value":`...)
	b = appendStr(b, p.ident)
	b = append(b, '}')
	if r.Float64() < 0.3 {
		g.out.variants.PatientRegionalID++
		b = append(b, `,{"system":"`+systemRegionalID+`","value":"`...)
		b = append(b, digits(r.Uint64N(9_000_000_000)+1_000_000_000, 10)...)
		b = append(b, `"}`...)
	}
	b = append(b, `],"name":[{"family":`...)
	b = appendStr(b, p.surname)
	b = append(b, `,"given":[`...)
	for i, n := range strings.Fields(p.given) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, n)
	}
	b = append(b, `]}],"telecom":[{"system":"phone","value":"+39 3`...)
	b = append2(b, r.IntN(100))
	b = append(b, ' ')
	b = append(b, digits(r.Uint64N(10_000_000), 7)...)
	b = append(b, `"},{"system":"email","value":"`...)
	b = appendEmailPart(b, p.given)
	b = append(b, '.')
	b = appendEmailPart(b, p.surname)
	b = strconv.AppendInt(b, int64(r.IntN(100)), 10)
	b = append(b, `@example.it"}],"gender":"`...)
	if p.female {
		b = append(b, "female"...)
	} else {
		b = append(b, "male"...)
	}
	b = append(b, `","birthDate":"`...)
	b = appendDate(b, p.birth)
	b = append(b, `","address":[{"use":"home","line":[`...)
	street := streets[r.IntN(len(streets))] + " " + strconv.Itoa(1+r.IntN(120))
	g.cda.street = street
	b = appendStr(b, street)
	b = append(b, `],"_line":[{"extension":[{"url":"`+fse.ExtCensusTract+`","valueString":"`...)
	b = append(b, cm.ISTAT...)
	b = append(b, `"}]}],"city":`...)
	b = appendStr(b, cm.Name)
	b = append(b, `,"district":"`...)
	b = append(b, cm.Sigla...)
	b = append(b, `","state":"`...)
	b = append(b, reg.Code...)
	b = append(b, `","postalCode":"`...)
	pc := postcodes[cm.ISTAT]
	if pc[1] == 0 {
		pc = [2]int{10000 * (1 + p.region%9), 1} // a comune added to fse without a postcode here
	}
	b = append(b, digits(uint64(pc[0]+r.IntN(pc[1])), 5)...)
	b = append(b, `","country":"100"}],"managingOrganization":{"identifier":{"system":"`+fse.SystemASL+`","value":"`...)
	b = append(b, reg.ASLs[p.asl]...)
	b = append(b, `"}}}`...)
	g.emit(fPatient, b)
	g.count(fPatient, p, false, g.plan.from)
}

func appendEmailPart(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c >= 'a' && c <= 'z':
			b = append(b, c)
		}
	}
	return b
}

// encounter is a visit, admission or emergency-room stay of the current person.
type encounter struct {
	id                 uid
	class              string
	start, end         day
	startSec, endSec   int
	region, asl, place int // producing facility
}

var classDisplay = map[string]string{"AMB": "ambulatory", "IMP": "inpatient encounter", "EMER": "emergency"}

// encounter writes an Encounter and returns its index in g.encs.
func (g *gen) encounter(p *person, class string, start day, startSec int, end day, endSec int, region, asl int) int {
	e := encounter{id: g.uid(), class: class, start: start, end: end, startSec: startSec, endSec: endSec, region: region, asl: asl, place: g.r.IntN(15)}
	g.encs = append(g.encs, e)
	g.emit(fEncounter, appendEncounter(g.out.data[fEncounter], &e, p, refNDJSON))
	g.count(fEncounter, p, false, start)
	return len(g.encs) - 1
}

func appendEncounter(b []byte, e *encounter, p *person, style refStyle) []byte {
	b = append(b, `{"resourceType":"Encounter","id":"`...)
	b = append(b, e.id[:]...)
	b = append(b, `","status":"finished","class":`...)
	b = appendCoding(b, systemActCode, e.class, classDisplay[e.class])
	b = append(b, `,"subject":`...)
	b = appendRefStyle(b, style, "Patient", &p.id)
	b = append(b, `,"period":{"start":"`...)
	b = appendDateTime(b, e.start, e.startSec)
	b = append(b, `","end":"`...)
	b = appendDateTime(b, e.end, e.endSec)
	return append(b, `"}}`...)
}

// facility is a 6-digit Ministry of Health facility code: region code, then a number
// tied to the ASL so each ASL has its own facilities.
func facility(region, asl, place int) string {
	return fse.Regions[region].Code + digits(uint64(100+asl*15+place), 3)
}

// prevalence is the chance that p carries diagnosis d.
func prevalence(d *diagnosis, p *person) float64 {
	if d.Sex == 'F' && !p.female || d.Sex == 'M' && p.female || p.age < d.MinAge {
		return 0
	}
	a := float64(p.age)
	if a < 40 {
		return d.P40 * (a - float64(d.MinAge)) / max(1, 40-float64(d.MinAge))
	}
	return max(0, min(0.9, d.P40+(d.P80-d.P40)*(a-40)/40))
}

func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	l, k, prod := math.Exp(-lambda), 0, r.Float64()
	for prod > l {
		k++
		prod *= r.Float64()
	}
	return k
}

// clinical writes a person's encounters, diagnoses, lab results, prescriptions and
// documents (bookings and their visits are in cup.go).
func (g *gen) clinical(p *person) {
	r, pl := g.r, g.plan
	for i := range chronic {
		if r.Float64() < prevalence(&chronic[i], p) {
			g.conds = append(g.conds, i)
			p.flags |= chronic[i].Flag
		}
	}
	age := float64(p.age)

	// Laboratory visits.
	lab := 0.2 + age/150 + 0.25*float64(len(g.conds))
	if p.age < 14 {
		lab = 0.12
	}
	for range poisson(r, pl.scale*lab) {
		d := pl.randDay(r)
		sec := 7*3600 + r.IntN(4*3600)
		ei := g.encounter(p, "AMB", d, sec, d, sec+600+r.IntN(1800), p.region, p.asl)
		g.labPanel(p, ei)
		if r.Float64() < 0.9 {
			e := &g.encs[ei]
			g.document(p, docLAB, ei, e.end, e.endSec+3600+r.IntN(4*3600), e.region, e.asl, e.place)
		}
	}

	// Admissions: about 0.1 a year, more for the old and the newborn.
	imp := 0.025 + 0.0028*max(0, age-40)
	if p.age == 0 {
		imp += 0.1
	}
	for range poisson(r, pl.scale*2*imp) {
		length := min(14, 1+int(r.ExpFloat64()*5))
		last := max(pl.from, pl.to-day(length))
		start := pl.from + day(r.IntN(int(last-pl.from)+1))
		end := min(pl.to, start+day(length))
		in, out := 8*3600+r.IntN(10*3600), 9*3600+r.IntN(5*3600)
		if end == start { // a short period cut the stay to one day
			out = in + 3600
		}
		ei := g.encounter(p, "IMP", start, in, end, out, p.region, r.IntN(len(fse.Regions[p.region].ASLs)))
		if len(g.conds) > 0 && r.Float64() < 0.35 {
			c := &chronic[g.conds[r.IntN(len(g.conds))]]
			g.condition(p, c.Code, c.Display, ei)
		} else {
			g.acuteCondition(p, ei, true)
		}
		if r.Float64() < 0.95 {
			e := &g.encs[ei]
			g.document(p, docLDO, ei, e.end, e.endSec+600, e.region, e.asl, e.place)
		}
	}

	// Emergency-room visits: about 0.3 a year, more for children and the old.
	er := 0.25 + 0.004*math.Abs(age-40)
	for range poisson(r, pl.scale*2*er) {
		d := pl.randDay(r)
		sec := 8*3600 + r.IntN(9*3600)
		ei := g.encounter(p, "EMER", d, sec, d, sec+3600+r.IntN(5*3600), p.region, p.asl)
		if r.Float64() < 0.75 {
			g.acuteCondition(p, ei, false)
		}
		if r.Float64() < 0.9 {
			e := &g.encs[ei]
			g.document(p, docVPS, ei, e.end, e.endSec, e.region, e.asl, e.place)
		}
		if r.Float64() < 0.4 {
			e := g.encs[ei]
			g.medication(p, pl.acuteDrugs[r.IntN(len(pl.acuteDrugs))], e.start, e.endSec)
		}
	}

	// Chronic diagnoses, recorded at one of the person's outpatient visits (a GP visit
	// when there is none), and their repeat prescriptions.
	for _, ci := range g.conds {
		c := &chronic[ci]
		ei := g.outpatientEncounter(p)
		g.condition(p, c.Code, c.Display, ei)
		if c.Flag&flagCancer != 0 && r.Float64() < 0.4 {
			g.condition(p, chemoFollowUp.Code, chemoFollowUp.Display, g.outpatientEncounter(p))
		}
		if ds := pl.chronicDrugs[ci]; len(ds) > 0 {
			di := ds[r.IntN(len(ds))]
			for range 1 + poisson(r, pl.scale*1.5) {
				g.medication(p, di, pl.randDay(r), 8*3600+r.IntN(10*3600))
			}
		}
	}

	// The GP's patient summary.
	if p.age >= 40 && r.Float64() < 0.12 {
		g.document(p, docPSS, -1, pl.randDay(r), 9*3600+r.IntN(9*3600), p.region, p.asl, r.IntN(15))
	}
}

// outpatientEncounter picks one of the person's outpatient visits or writes a GP visit.
func (g *gen) outpatientEncounter(p *person) int {
	r := g.r
	n := 0
	for i := range g.encs {
		if g.encs[i].class == "AMB" {
			n++
		}
	}
	if n > 0 && r.Float64() < 0.8 {
		k := r.IntN(n)
		for i := range g.encs {
			if g.encs[i].class == "AMB" {
				if k == 0 {
					return i
				}
				k--
			}
		}
	}
	d := g.plan.randDay(r)
	sec := 8*3600 + r.IntN(10*3600)
	return g.encounter(p, "AMB", d, sec, d, sec+900+r.IntN(1800), p.region, p.asl)
}

func (g *gen) acuteCondition(p *person, ei int, inpatient bool) {
	r := g.r
	for {
		a := &acute[r.IntN(len(acute))]
		if a.Inpatient != inpatient || a.Elderly && p.age < 55 && r.Float64() < 0.9 {
			continue
		}
		g.condition(p, a.Code, a.Display, ei)
		return
	}
}

func (g *gen) condition(p *person, code, display string, ei int) {
	e := &g.encs[ei]
	b := g.out.data[fCondition]
	b = append(b, `{"resourceType":"Condition","id":"`...)
	id := g.uid()
	b = append(b, id[:]...)
	b = append(b, `","code":{"coding":[`...)
	b = appendCoding(b, fse.SystemICD9CM, code, display)
	b = append(b, `]},"subject":`...)
	b = appendRef(b, "Patient", &p.id)
	b = append(b, `,"encounter":`...)
	b = appendRef(b, "Encounter", &e.id)
	b = append(b, `,"onsetDateTime":"`...)
	b = appendDate(b, e.start)
	b = append(b, `","recordedDate":"`...)
	b = appendDate(b, e.start)
	b = append(b, `"}`...)
	g.cda.condition(ei, code, display)
	g.emit(fCondition, b)
	g.count(fCondition, p, false, e.start)
}

// labPanel writes the tests of one laboratory visit.
func (g *gen) labPanel(p *person, ei int) {
	r := g.r
	n := 0
	for i := range labTests {
		t := &labTests[i]
		prob := 0.8 * t.P
		if t.Flag != 0 && p.flags&t.Flag != 0 && t.FlagP > 0 {
			prob = t.FlagP
		}
		if p.age < 14 {
			prob /= 2
		}
		if r.Float64() < prob {
			g.observation(p, ei, t)
			n++
		}
	}
	if n == 0 {
		g.observation(p, ei, &labTests[0])
	}
}

// Observation faults.
const (
	obsOK = iota
	obsOutside
	obsTruncated
	obsBadDate
)

// observation writes one lab result of encounter ei: in about 1% of cases (for people
// who may carry such records) a result dated weeks before the period and tied to no
// encounter, and in about 0.4% each a line cut in half or a malformed date.
func (g *gen) observation(p *person, ei int, t *labTest) {
	r, pl, c := g.r, g.plan, g.out
	e := &g.encs[ei]
	fault := obsOK
	u := r.Float64()
	if p.normal() {
		switch {
		case u < 0.004:
			fault = obsTruncated
		case u < 0.008:
			fault = obsBadDate
		case u < 0.018:
			fault = obsOutside
		}
	}
	d, sec, enc := e.start, e.startSec+r.IntN(600), &e.id
	if fault == obsOutside {
		d, sec, enc = pl.from-day(7+r.IntN(36)), 8*3600+r.IntN(4*3600), nil
	}
	v, interp := g.labValue(p, t)
	start := len(c.data[fObservation])
	id := g.uid()
	b := appendObservation(c.data[fObservation], &id, p, enc, t, v, interp, d, sec, refNDJSON, fault == obsBadDate, r.IntN(2))
	switch fault {
	case obsTruncated:
		b = b[:start+(len(b)-start)/2]
		c.faults.ObservationTruncated++
	case obsBadDate:
		c.faults.ObservationBadDate++
	}
	g.emit(fObservation, b)
	g.count(fObservation, p, fault == obsTruncated || fault == obsBadDate, d)
	if fault == obsOK {
		g.cda.observation(ei, t, v, interp, d, sec)
	}
}

// labValue draws a result and its interpretation (N, H or L against the reference range).
func (g *gen) labValue(p *person, t *labTest) (float64, string) {
	mean, sd := t.Mean, t.SD
	if p.female && t.FMean != 0 {
		mean = t.FMean
	}
	if t.Flag != 0 && p.flags&t.Flag != 0 && t.FlagMean != 0 {
		mean, sd = t.FlagMean, t.FlagSD
	}
	var v float64
	if t.Log {
		v = mean * math.Exp(sd*g.r.NormFloat64())
	} else {
		v = mean + sd*g.r.NormFloat64()
	}
	scale := math.Pow10(t.Dec)
	v = math.Round(max(v, t.Min)*scale) / scale
	low, high := t.Low, t.High
	if p.female && t.FHigh != 0 {
		low, high = t.FLow, t.FHigh
	}
	switch {
	case v < low:
		return v, "L"
	case v > high:
		return v, "H"
	}
	return v, "N"
}

var interpretationDisplay = map[string]string{"N": "Normal", "H": "High", "L": "Low"}

func appendObservation(b []byte, id *uid, p *person, enc *uid, t *labTest, v float64, interp string, d day, sec int, style refStyle, badDate bool, badForm int) []byte {
	b = append(b, `{"resourceType":"Observation","id":"`...)
	b = append(b, id[:]...)
	b = append(b, `","status":"final","category":[{"coding":[{"system":"`+systemObsCategory+`","code":"laboratory","display":"Laboratory"}]}],"code":{"coding":[`...)
	b = appendCoding(b, fse.SystemLOINC, t.Code, t.Display)
	b = append(b, `]},"subject":`...)
	b = appendRefStyle(b, style, "Patient", &p.id)
	if enc != nil {
		b = append(b, `,"encounter":`...)
		b = appendRefStyle(b, style, "Encounter", enc)
	}
	b = append(b, `,"effectiveDateTime":"`...)
	if badDate {
		b = appendBadDate(b, d, badForm)
		if badForm == 0 {
			b = append(b, "T10:"...)
			b = append2(b, sec/60%60)
			b = append(b, ":00+01:00"...)
		} else {
			b = append(b, " 10:"...)
			b = append2(b, sec/60%60)
		}
	} else {
		b = appendDateTime(b, d, sec)
	}
	b = append(b, `","valueQuantity":{"value":`...)
	b = appendFloat(b, v, t.Dec)
	b = append(b, `,"unit":`...)
	b = appendStr(b, t.Unit)
	b = append(b, `,"system":"`+fse.SystemUCUM+`","code":`...)
	b = appendStr(b, t.Unit)
	b = append(b, `},"interpretation":[{"coding":[`...)
	b = appendCoding(b, systemInterpretation, interp, interpretationDisplay[interp])
	return append(b, `]}]}`...)
}

// appendBadDate writes a date ingest must reject: 30 February of d's year, or d in
// the Italian DD/MM/YYYY form.
func appendBadDate(b []byte, d day, form int) []byte {
	y, m, dd := d.civil()
	if form == 0 {
		b = append4(b, y)
		return append(b, "-02-30"...)
	}
	b = append2(b, dd)
	b = append(b, '/')
	b = append2(b, m)
	b = append(b, '/')
	return append4(b, y)
}

// medication writes a MedicationRequest with its NRE prescription number; a person has at
// most 16 (the NRE numbering reserves 16 slots per person for them).
func (g *gen) medication(p *person, di int, d day, sec int) {
	if g.nMeds >= 16 {
		return
	}
	slot := 48 + g.nMeds
	g.nMeds++
	dr := &drugs[di]
	b := g.out.data[fMedicationRequest]
	b = append(b, `{"resourceType":"MedicationRequest","id":"`...)
	id := g.uid()
	b = append(b, id[:]...)
	b = append(b, `","identifier":[{"system":"`+systemNRE+`","value":"`...)
	nre := len(b)
	b = g.appendNRE(b, p, slot)
	g.cda.medication(dr, b[nre:], d, sec)
	b = append(b, `"}],"status":"active","intent":"order","medicationCodeableConcept":{"coding":[`...)
	b = appendCoding(b, fse.SystemAIC, dr.AIC, dr.Name)
	b = append(b, ',')
	b = appendCoding(b, fse.SystemATC, dr.ATC, dr.Substance)
	b = append(b, `]},"subject":`...)
	b = appendRef(b, "Patient", &p.id)
	b = append(b, `,"authoredOn":"`...)
	b = appendDateTime(b, d, sec)
	b = append(b, `"}`...)
	g.emit(fMedicationRequest, b)
	g.count(fMedicationRequest, p, false, d)
}

// appendNRE writes a prescription number: the prescriber's region, "A", and 11 digits
// unique per (person, slot): slots 0–47 are bookings, 48–63 drug prescriptions.
func (g *gen) appendNRE(b []byte, p *person, slot int) []byte {
	b = append(b, fse.Regions[p.region].Code...)
	b = append(b, 'A')
	return append(b, digits(g.plan.nre.apply(uint64(p.index)*64+uint64(slot)), 11)...)
}

// document writes a DocumentReference of type code (LOINC), tied to encounter ei unless
// ei < 0. Its masterIdentifier has the Gateway's shape, which embeds the patient's code.
func (g *gen) document(p *person, code string, ei int, d day, sec int, region, asl, place int) {
	b := g.out.data[fDocumentReference]
	b = append(b, `{"resourceType":"DocumentReference","id":"`...)
	id := g.uid()
	b = append(b, id[:]...)
	b = append(b, `","masterIdentifier":`...)
	b = g.appendDocID(b, p, d, sec, region, asl, place)
	b = append(b, `,"status":"current","type":{"coding":[`...)
	b = appendCoding(b, fse.SystemLOINC, code, g.plan.docNames[code])
	b = append(b, `]},"subject":`...)
	b = appendRef(b, "Patient", &p.id)
	b = append(b, `,"date":"`...)
	b = appendDateTime(b, d, sec)
	b = append(b, '"')
	if ei >= 0 {
		b = append(b, `,"context":{"encounter":[`...)
		b = appendRef(b, "Encounter", &g.encs[ei].id)
		b = append(b, `]}`...)
	}
	b = append(b, '}')
	g.emit(fDocumentReference, b)
	g.count(fDocumentReference, p, false, d)
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// appendDocID writes {"system":..., "value":"<facility>.<patient id>.<stamp>.<8 alnum>"}.
func (g *gen) appendDocID(b []byte, p *person, d day, sec int, region, asl, place int) []byte {
	b = append(b, `{"system":"urn:oid:2.16.840.1.113883.2.9.2.`...)
	b = append(b, fse.Regions[region].Code...)
	b = append(b, `.4.4","value":"`...)
	b = append(b, facility(region, asl, place)...)
	b = append(b, '.')
	b = append(b, p.ident...)
	b = append(b, '.')
	b = appendStamp(b, d, sec)
	b = append(b, '.')
	for range 8 {
		b = append(b, alnum[g.r.IntN(len(alnum))])
	}
	return append(b, `"}`...)
}

// immunizations writes the childhood schedule doses that fall in the period, and the
// adult campaigns (influenza and COVID-19 each autumn, pneumococcus and zoster for the old).
func (g *gen) immunizations(p *person) {
	r, pl := g.r, g.plan
	type dose struct{ vac, n, ageDays int }
	series := [][]dose{
		{{vacHexa, 1, 61}, {vacHexa, 2, 121}, {vacHexa, 3, 335}},
		{{vacPneumo, 1, 61}, {vacPneumo, 2, 121}, {vacPneumo, 3, 335}},
		{{vacMenB, 1, 76}, {vacMenB, 2, 136}, {vacMenB, 3, 400}},
		{{vacMMR, 1, 395}, {vacMMR, 2, 6*365 + 30}},
		{{vacDTaP, 4, 6*365 + 60}, {vacDTaP, 5, 14*365 + 60}},
		{{vacHPV, 1, 11*365 + 60}, {vacHPV, 2, 11*365 + 240}},
	}
	coverage := []float64{0.95, 0.92, 0.8, 0.93, 0.88, 0.6}
	if p.age <= 15 {
		for si, s := range series {
			if r.Float64() >= coverage[si] {
				continue
			}
			for _, ds := range s {
				d := p.birth + day(ds.ageDays+r.IntN(45))
				if pl.inPeriod(d) {
					g.immunization(p, ds.vac, ds.n, d)
				}
			}
		}
	}
	lastYear, _, _ := pl.to.civil()
	for y := pl.fromYear; y <= lastYear; y++ {
		d := civilDay(y, 10, 15) + day(r.IntN(75))
		age := p.age + y - pl.fromYear
		if !pl.inPeriod(d) {
			continue
		}
		flu := 0.08
		switch {
		case age >= 65:
			flu = 0.55
		case age >= 18:
			flu = 0.12
		}
		if r.Float64() < flu {
			g.immunization(p, vacFlu, 1, d)
		}
		if age >= 60 && r.Float64() < 0.18 {
			g.immunization(p, vacCovid, 3+r.IntN(3), d+day(r.IntN(20)))
		}
	}
	if p.age >= 65 && r.Float64() < 0.12*pl.scale {
		g.immunization(p, vacPneumo, 1, pl.randDay(r))
	}
	if p.age >= 65 && p.age <= 70 && r.Float64() < 0.15 {
		d := pl.randDay(r)
		g.immunization(p, vacZoster, 1, d)
		if d2 := d + day(60+r.IntN(60)); pl.inPeriod(d2) {
			g.immunization(p, vacZoster, 2, d2)
		}
	}
}

func (g *gen) immunization(p *person, vac, doseN int, d day) {
	if !g.plan.inPeriod(d) {
		return
	}
	r := g.r
	v := &vaccines[vac]
	sec := 8*3600 + r.IntN(9*3600)
	b := g.out.data[fImmunization]
	b = append(b, `{"resourceType":"Immunization","id":"`...)
	id := g.uid()
	b = append(b, id[:]...)
	b = append(b, `","status":"completed","vaccineCode":{"coding":[`...)
	b = appendCoding(b, fse.SystemAIC, v.AIC, v.Name)
	b = append(b, ',')
	b = appendCoding(b, fse.SystemATC, v.ATC, v.Substance)
	b = append(b, `]},"patient":`...)
	b = appendRef(b, "Patient", &p.id)
	b = append(b, `,"occurrenceDateTime":"`...)
	b = appendDateTime(b, d, sec)
	b = append(b, `","protocolApplied":[{"doseNumberPositiveInt":`...)
	b = strconv.AppendInt(b, int64(doseN), 10)
	b = append(b, `}]}`...)
	g.cda.immunization(v, doseN, d, sec)
	g.emit(fImmunization, b)
	g.count(fImmunization, p, false, d)
	if r.Float64() < 0.25 {
		g.document(p, docVACC, -1, d, sec+1800, p.region, p.asl, r.IntN(15))
	}
}

// optOut lists about 1% of people (never those with a bad code), some in lower case and
// some as another variant of their code; ingest must match them all.
func (g *gen) optOut(p *person) {
	if !p.optOut {
		return
	}
	r, c := g.r, g.out
	c.optedOut++
	s := p.ident
	switch u := r.Float64(); {
	case u < 0.2:
		s = strings.ToLower(s)
		c.variants.OptOutLowercase++
	case u < 0.4 && p.kind == kindCF:
		s = mustOmocode(p.cf, omocodeDepth(r))
		c.variants.OptOutOmocode++
	case u < 0.4 && p.kind == kindOmocode:
		s = p.cf
		c.variants.OptOutOmocode++
	}
	c.data[fOptOut] = append(append(c.data[fOptOut], s...), '\n')
	c.lines[fOptOut]++
}
