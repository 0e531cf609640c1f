package synth

import (
	"encoding/csv"
	"math"
	"math/rand/v2"

	"github.com/velo-fse/velo/fse"
)

// Waiting-time model. For a first-access booking with priority class c, the wait from
// contact to first available date is T(c, kind) * m(c) * region * service * exp(σZ),
// where T is the PNGLA maximum wait: the share within target falls with the region's and
// the service's factor (regionWait, serviceModel.Wait), which is what monitoring reports
// show. Follow-ups are scheduled by the specialist, with no target.
var prioMedian = map[fse.Priority]float64{fse.Urgent: 0.56, fse.Short: 0.68, fse.Deferrable: 0.56, fse.Programmable: 0.5}

const waitSigma = 0.6

// Booking faults and variants; a booking has at most one.
const (
	bookOK = iota
	bookBadDate
	bookUnknownService
	bookUnknownPriority
	bookTruncated
	bookOutside
	bookOmocode
)

// bookings writes a person's CUP bookings: a negative binomial count (mean about 2.5
// over two years, growing with age; many people have none, a few ten or more), each
// with its prescription (ServiceRequest) and, once delivered, the visit and its report.
func (g *gen) bookings(p *person) {
	mean := 2.5 * g.plan.scale * (0.35 + float64(p.age)/55) / 1.17
	n := min(48, poisson(g.r, gammaVariate(g.r, 0.6)*mean/0.6))
	for j := range n {
		g.booking(p, j)
	}
}

func (g *gen) booking(p *person, j int) {
	r, pl, c := g.r, g.plan, g.out
	band := min(p.age/5, nAgeBands-1)
	sex := 0
	if p.female {
		sex = 1
	}
	s := &pl.services[pl.serviceW[sex][band].pick(r)]
	first := r.Float64() < 0.7
	var prio fse.Priority
	if first {
		prio = fse.Priorities[pl.priorities.pick(r)]
	}

	fault := bookOK
	u := r.Float64()
	if p.normal() {
		switch {
		case u < 0.004:
			fault = bookBadDate
		case u < 0.008:
			fault = bookUnknownService
		case u < 0.012:
			if first {
				fault = bookUnknownPriority
			}
		case u < 0.016:
			fault = bookTruncated
		case u < 0.026:
			fault = bookOutside
		}
	}
	if u >= 0.026 && u < 0.056 && p.kind == kindCF { // valid, so opted-out people get some too
		fault = bookOmocode
	}

	channel := fse.Channels[pl.channels.pick(r)]
	var contact day
	lo, hi := pl.from, pl.to
	if fault == bookOutside {
		contact = pl.from - day(7+r.IntN(36))
		lo, hi = contact-7, pl.from-1
	} else {
		contact = pl.randDay(r)
	}
	if contact.weekday() == 0 && channel != "online" { // CUP desks are closed on Sunday
		if contact-1 >= lo {
			contact--
		} else if contact+1 <= hi {
			contact++
		}
	}
	lag := int(r.ExpFloat64() * 6)
	if prio == fse.Urgent {
		lag = r.IntN(2)
	}
	presc := contact - day(min(lag, 90))
	if fault != bookOutside && presc < pl.from {
		presc = pl.from
	}

	region, asl := p.region, p.asl
	if r.Float64() < 0.07 { // mobility: care in another region
		region = pl.mobility[p.region].pick(r)
		asl = r.IntN(len(fse.Regions[region].ASLs))
	} else if r.Float64() < 0.25 {
		asl = r.IntN(len(fse.Regions[region].ASLs))
	}
	place := r.IntN(15)
	rf := regionWaitFactor(fse.Regions[region].Code)

	var wait int
	if first {
		target, _ := fse.MaxWaitDays(prio, s.Kind)
		f := prioMedian[prio] * rf * s.Wait * math.Exp(waitSigma*r.NormFloat64())
		wait = int(math.Round(float64(target) * f))
		if prio != fse.Urgent {
			wait = max(wait, 1)
		}
	} else {
		wait = 1 + int(45*rf*s.Wait*math.Exp(0.6*r.NormFloat64()))
	}
	wait = min(wait, 720)
	firstAvail := contact + day(wait)
	garanzia := r.Float64() < 0.85
	appt := firstAvail
	if !garanzia { // the patient turned the first date down
		appt += day(3 + int(r.ExpFloat64()*25))
	}

	status, delivered := "booked", day(0)
	switch su := r.Float64(); {
	case su < 0.05:
		status = "cancelled"
	case appt <= pl.to && su < 0.08:
		status = "no-show"
	case appt <= pl.to:
		status = "delivered"
		dl := 0
		if v := r.Float64(); v > 0.92 {
			dl = 2
		} else if v > 0.8 {
			dl = 1
		}
		delivered = appt + day(min(dl, int(pl.to-appt)))
	}

	hasRx := r.Float64() < 0.95
	var nre []byte
	if hasRx {
		nre = g.appendNRE(nil, p, j)
	} else {
		c.variants.BookingNoRx++
	}

	// The CSV row.
	f := &g.csv.fields
	f[0] = "B" + digits(pl.bookingID.apply(uint64(p.index)*64+uint64(j)), 12)
	f[1] = string(nre)
	f[2] = p.ident
	f[3] = s.Code
	f[4] = string(prio)
	f[5] = boolString(first)
	f[6] = presc.String()
	f[7] = contact.String()
	f[8] = firstAvail.String()
	f[9] = appt.String()
	f[10] = ""
	if status == "delivered" {
		f[10] = delivered.String()
	}
	f[11] = boolString(garanzia)
	f[12] = facility(region, asl, place)
	f[13] = fse.Regions[region].ASLs[asl]
	f[14] = fse.Regions[region].Code
	f[15] = channel
	f[16] = status
	n := len(f)
	switch fault {
	case bookBadDate:
		k := 6 + r.IntN(4)
		d := [...]day{presc, contact, firstAvail, appt}[k-6]
		f[k] = string(appendBadDate(nil, d, r.IntN(2)))
		c.faults.BookingBadDate++
	case bookUnknownService:
		f[3] = unknownServices[r.IntN(len(unknownServices))]
		c.faults.BookingUnknownService++
	case bookUnknownPriority:
		f[4] = "X"
		c.faults.BookingUnknownPriority++
	case bookTruncated:
		n = 4 + r.IntN(12)
		c.faults.BookingTruncated++
	case bookOmocode:
		f[2] = mustOmocode(p.cf, omocodeDepth(r))
		c.variants.BookingOmocode++
	}
	g.csv.write(f[:n])
	malformed := fault == bookBadDate || fault == bookUnknownService || fault == bookUnknownPriority || fault == bookTruncated
	g.count(fBookings, p, malformed, contact)

	if hasRx {
		g.serviceRequest(p, s, prio, nre, presc)
	}
	if status == "delivered" {
		sec := 8*3600 + r.IntN(9*3600)
		ei := g.encounter(p, "AMB", delivered, sec, delivered, sec+900+r.IntN(2700), region, asl)
		g.encs[ei].place = place
		if r.Float64() < 0.92 {
			e := &g.encs[ei]
			g.document(p, s.Doc, ei, e.end, e.endSec+1800+r.IntN(2*3600), region, asl, place)
		}
		if s.Pathology && r.Float64() < 0.3 {
			if d := delivered + day(7+r.IntN(14)); d <= pl.to {
				g.document(p, docRAP, ei, d, 10*3600+r.IntN(6*3600), region, asl, place)
			}
		}
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// serviceRequest writes the specialist prescription behind a booking.
func (g *gen) serviceRequest(p *person, s *service, prio fse.Priority, nre []byte, d day) {
	r := g.r
	b := g.out.data[fServiceRequest]
	b = append(b, `{"resourceType":"ServiceRequest","id":"`...)
	id := g.uid()
	b = append(b, id[:]...)
	b = append(b, '"')
	if prio != "" {
		b = append(b, `,"extension":[{"url":"`+extPriorityClass+`","valueCode":"`...)
		b = append(b, prio...)
		b = append(b, `"}]`...)
	}
	b = append(b, `,"identifier":[{"system":"`+systemNRE+`","value":"`...)
	b = append(b, nre...)
	b = append(b, `"}],"status":"active","intent":"order","code":{"coding":[`...)
	b = appendCoding(b, systemNomenclatore, s.Code, s.Name)
	b = append(b, `]},"subject":`...)
	b = appendRef(b, "Patient", &p.id)
	b = append(b, `,"authoredOn":"`...)
	sec := 8*3600 + r.IntN(11*3600)
	b = appendDateTime(b, d, sec)
	b = append(b, `"}`...)
	g.cda.serviceRequest(s, prio, nre, d, sec)
	g.emit(fServiceRequest, b)
	g.count(fServiceRequest, p, false, d)
}

// gammaVariate draws Gamma(k, 1) (Marsaglia and Tsang; boosted for k < 1).
func gammaVariate(r *rand.Rand, k float64) float64 {
	if k < 1 {
		return gammaVariate(r, k+1) * math.Pow(r.Float64(), 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// csvRow writes booking rows into the chunk's buffer through encoding/csv.
type csvRow struct {
	w      *csv.Writer
	sink   sliceWriter
	fields [17]string
}

type sliceWriter struct{ p *[]byte }

func (s *sliceWriter) Write(b []byte) (int, error) {
	*s.p = append(*s.p, b...)
	return len(b), nil
}

func (c *csvRow) reset(p *[]byte) {
	c.sink.p = p
	if c.w == nil {
		c.w = csv.NewWriter(&c.sink)
	}
}

func (c *csvRow) write(fields []string) {
	_ = c.w.Write(fields) // writes to memory: cannot fail
}

func (c *csvRow) flush() { c.w.Flush() }
