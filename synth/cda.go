package synth

import (
	"archive/zip"
	"bytes"
	"math/rand/v2"
	"strconv"

	"github.com/velo-fse/velo/fse"
)

// CDA output (FormatCDA): the same people and facts as the FHIR files, rendered as HL7
// CDA R2 documents shaped like the Gateway examples and stored in one zip archive per
// chunk of 500 people, cda/cda-NNNNNN.zip (each entry one document):
//
//   - a laboratory report (11502-2) for each laboratory visit, with the visit's results:
//     the Observations of Observation.ndjson that carry no planted fault;
//   - a vaccination certificate (82593-5) for each vaccinated person, with every dose of
//     Immunization.ndjson;
//   - a specialist prescription (57832-8) for each ServiceRequest: NRE, service, priority
//     class;
//   - a drug prescription (57833-6) for each MedicationRequest;
//   - an ER report (59258-4) for each emergency-room Encounter: triage code, outcome and
//     the diagnosis made there, if any.
//
// Ingesting fhir/ndjson alone or cda/ alone therefore gives the same lab_result,
// vaccination, prescription and medication rows (ingesting both counts those facts
// twice: they are two renderings of one extract). About 0.3% of people (never opted-out
// or quarantined ones) also get an extra laboratory report cut short, which ingest must
// quarantine as one record.
//
// Rendering draws nothing from the person's generator: what the FHIR files do not carry
// (document ids, a phone number, triage and outcome) comes from a second generator
// seeded by the seed and the person index, so FHIR and CSV are the same bytes with or
// without CDA, and CDA is the same whatever the number of workers.

// ER triage codes and outcomes (EMUR flow code systems 2.16.840.1.113883.2.9.6.1.54.4
// and .54.5, as the Gateway's VPS example uses them) with made-up shares: a modelling
// choice, unverified against the national value sets.
var (
	triageCodes   = []string{"B", "V", "G", "R"}
	triageWeights = []float64{18, 55, 22, 5}
	erOutcomes    = []string{"1", "2", "3", "4", "6", "7", "8"}
	erOutcomeW    = []float64{74, 5, 13, 2, 1, 3, 2}
)

const (
	oidTriage    = "2.16.840.1.113883.2.9.6.1.54.4"
	oidEROutcome = "2.16.840.1.113883.2.9.6.1.54.5"
	cdaDocDrugRx = "57833-6"
	cdaDocSpecRx = "57832-8"
	cdaDocCert   = "82593-5"
)

// cdaGen collects the current person's facts while the FHIR resources are drawn, and
// renders them when the person is done. Its methods do nothing unless CDA is on.
type cdaGen struct {
	on     bool
	pcg    *rand.PCG
	r      *rand.Rand
	triage weighted
	outc   weighted

	street string
	obs    []cdaObs
	vaccs  []cdaVacc
	rxs    []cdaRx
	meds   []cdaMed
	conds  []cdaCond

	buf  []byte
	zbuf bytes.Buffer
	zw   *zip.Writer
	docs int // documents of the current person, for entry names
}

type cdaObs struct {
	enc    int
	test   *labTest
	v      float64
	interp string
	d      day
	sec    int
}

type cdaVacc struct {
	v    *drug
	dose int
	d    day
	sec  int
}

type cdaRx struct {
	s    *service
	prio fse.Priority
	nre  string
	d    day
	sec  int
}

type cdaMed struct {
	dr  *drug
	nre string
	d   day
	sec int
}

type cdaCond struct {
	enc           int
	code, display string
}

func (c *cdaGen) init() {
	c.on = true
	c.pcg = rand.NewPCG(0, 0)
	c.r = rand.New(c.pcg)
	c.triage = newWeighted(triageWeights)
	c.outc = newWeighted(erOutcomeW)
}

func (c *cdaGen) reset() {
	c.obs, c.vaccs, c.rxs, c.meds, c.conds = c.obs[:0], c.vaccs[:0], c.rxs[:0], c.meds[:0], c.conds[:0]
	c.docs = 0
}

func (c *cdaGen) observation(enc int, t *labTest, v float64, interp string, d day, sec int) {
	if c.on {
		c.obs = append(c.obs, cdaObs{enc, t, v, interp, d, sec})
	}
}

func (c *cdaGen) immunization(v *drug, dose int, d day, sec int) {
	if c.on {
		c.vaccs = append(c.vaccs, cdaVacc{v, dose, d, sec})
	}
}

func (c *cdaGen) serviceRequest(s *service, prio fse.Priority, nre []byte, d day, sec int) {
	if c.on {
		c.rxs = append(c.rxs, cdaRx{s, prio, string(nre), d, sec})
	}
}

func (c *cdaGen) medication(dr *drug, nre []byte, d day, sec int) {
	if c.on {
		c.meds = append(c.meds, cdaMed{dr, string(nre), d, sec})
	}
}

func (c *cdaGen) condition(enc int, code, display string) {
	if c.on {
		c.conds = append(c.conds, cdaCond{enc, code, display})
	}
}

// cdaStart and cdaFinish bracket a chunk: its documents go into one zip archive.
func (g *gen) cdaStart() {
	if !g.cda.on {
		return
	}
	g.cda.zbuf.Reset()
	g.cda.zw = zip.NewWriter(&g.cda.zbuf)
}

func (g *gen) cdaFinish() {
	c := &g.cda
	if !c.on {
		return
	}
	if err := c.zw.Close(); err != nil {
		panic("synth: close CDA archive in memory: " + err.Error())
	}
	if g.out.cdaOutcome.Records > 0 {
		g.out.cdaZip = append(g.out.cdaZip[:0], c.zbuf.Bytes()...)
	}
}

// cdaTally counts one CDA record of person p dated d (nil for the person record) the way
// ingest will: quarantined for a bad identifier, opted out, or outside the period.
func (g *gen) cdaTally(p *person, d *day) {
	o := &g.out.cdaOutcome
	o.Records++
	switch {
	case p.kind == kindBad:
		o.Quarantined++
	case p.optOut:
		o.OptedOut++
	case d != nil && !g.plan.inPeriod(*d):
		o.OutsidePeriod++
	}
}

// cdaDocuments renders the current person's documents.
func (g *gen) cdaDocuments(p *person) {
	c := &g.cda
	c.pcg.Seed(g.plan.seedA^0xcda0cda0cda0cda0, mix64(g.plan.seedB^uint64(p.index)*0x9e3779b97f4a7c15))
	// Laboratory reports: one per visit, in the order the visits were drawn.
	for i := 0; i < len(c.obs); {
		j := i
		for j < len(c.obs) && c.obs[j].enc == c.obs[i].enc {
			j++
		}
		d := g.cdaLab(p, c.obs[i:j])
		g.cdaAdd(p, "LAB")
		g.cdaTally(p, nil)
		g.cdaTally(p, &d)
		for k := i; k < j; k++ {
			g.cdaTally(p, &c.obs[k].d)
		}
		i = j
	}
	if len(c.vaccs) > 0 {
		g.cdaCertificate(p)
	}
	for i := range c.rxs {
		g.cdaSpecialistRx(p, &c.rxs[i])
	}
	for i := range c.meds {
		g.cdaDrugRx(p, &c.meds[i])
	}
	for ei := range g.encs {
		if g.encs[ei].class == "EMER" {
			g.cdaER(p, ei)
		}
	}
	if p.normal() && len(c.obs) > 0 && c.r.Float64() < 0.003 {
		// An extra report cut short: malformed XML, one quarantined record.
		g.cdaLab(p, c.obs[:1])
		c.buf = c.buf[:len(c.buf)*2/3]
		g.cdaAdd(p, "LAB")
		g.out.faults.CDATruncated++
		g.out.cdaOutcome.Records++
		g.out.cdaOutcome.Quarantined++
	}
}

// cdaAdd adds the document in c.buf to the chunk's archive.
func (g *gen) cdaAdd(p *person, kind string) {
	c := &g.cda
	c.docs++
	g.out.cdaDocs++
	name := kind + "-" + digits(uint64(p.index+1), 8) + "-" + strconv.Itoa(c.docs) + ".xml"
	w, err := c.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
	if err == nil {
		_, err = w.Write(c.buf)
	}
	if err != nil {
		panic("synth: write CDA archive in memory: " + err.Error())
	}
}

// cdaLab renders a laboratory report of one visit's results into c.buf and returns its
// date.
func (g *gen) cdaLab(p *person, obs []cdaObs) day {
	c := &g.cda
	e := &g.encs[obs[0].enc]
	sec := min(e.endSec+2*3600, 23*3600+59*60)
	b := g.cdaHeader(c.buf[:0], p, docLAB, "2.16.840.1.113883.2.9.10.1.1", "REFERTO DI LABORATORIO", e.end, sec, e.region, e.asl, e.place)
	b = append(b, "<component><structuredBody><component><section>"+
		`<code code="18719-5" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Chemistry studies (set)"/>`+
		"<title>Esami di chimica clinica</title><text><table><tbody>"...)
	for _, o := range obs {
		b = append(b, "<tr><td>"...)
		b = appendXML(b, o.test.Display)
		b = append(b, "</td><td>"...)
		b = appendFloat(b, o.v, o.test.Dec)
		b = append(b, "</td><td>"...)
		b = appendXML(b, o.test.Unit)
		b = append(b, "</td><td>"...)
		b = append(b, o.interp...)
		b = append(b, "</td></tr>"...)
	}
	b = append(b, "</tbody></table></text>"...)
	for _, o := range obs {
		b = append(b, `<entry typeCode="DRIV"><observation classCode="OBS" moodCode="EVN"><code code="`...)
		b = append(b, o.test.Code...)
		b = append(b, `" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="`...)
		b = appendXML(b, o.test.Display)
		b = append(b, `"/><statusCode code="completed"/><effectiveTime value="`...)
		b = appendTS(b, o.d, o.sec)
		b = append(b, `"/><value xsi:type="PQ" value="`...)
		b = appendFloat(b, o.v, o.test.Dec)
		b = append(b, `" unit="`...)
		b = appendXML(b, o.test.Unit)
		b = append(b, `"/><interpretationCode code="`...)
		b = append(b, o.interp...)
		b = append(b, `" codeSystem="2.16.840.1.113883.5.83"/></observation></entry>`...)
	}
	c.buf = append(b, "</section></component></structuredBody></component></ClinicalDocument>\n"...)
	return e.end
}

// cdaCertificate renders the vaccination certificate of every dose the person had,
// issued the day of the last.
func (g *gen) cdaCertificate(p *person) {
	c := &g.cda
	last := c.vaccs[len(c.vaccs)-1]
	for _, v := range c.vaccs {
		if v.d > last.d {
			last = v
		}
	}
	sec := min(last.sec+3600, 23*3600+59*60)
	b := g.cdaHeader(c.buf[:0], p, cdaDocCert, "2.16.840.1.113883.2.9.10.1.11.1.2", "CERTIFICATO VACCINALE", last.d, sec, p.region, p.asl, c.r.IntN(15))
	b = append(b, "<component><structuredBody><component><section>"+
		`<code code="11369-6" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Storia delle vaccinazioni"/>`+
		"<title>Vaccinazioni</title><text><list>"...)
	for _, v := range c.vaccs {
		b = append(b, "<item>"...)
		b = appendXML(b, v.v.Name)
		b = append(b, ", dose "...)
		b = strconv.AppendInt(b, int64(v.dose), 10)
		b = append(b, "</item>"...)
	}
	b = append(b, "</list></text>"...)
	for _, v := range c.vaccs {
		b = append(b, `<entry><substanceAdministration classCode="SBADM" moodCode="EVN"><statusCode code="completed"/><effectiveTime value="`...)
		b = appendTS(b, v.d, v.sec)
		b = append(b, `"/>`...)
		b = appendProduct(b, v.v)
		b = append(b, `<entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">`+
			`<code code="30973-2" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Dose number"/>`+
			`<statusCode code="completed"/><value xsi:type="INT" value="`...)
		b = strconv.AppendInt(b, int64(v.dose), 10)
		b = append(b, `"/></observation></entryRelationship></substanceAdministration></entry>`...)
	}
	c.buf = append(b, "</section></component></structuredBody></component></ClinicalDocument>\n"...)
	g.cdaAdd(p, "CERT_VACC")
	g.cdaTally(p, nil)
	g.cdaTally(p, &last.d)
	for i := range c.vaccs {
		g.cdaTally(p, &c.vaccs[i].d)
	}
}

// cdaSpecialistRx renders the specialist prescription (ricetta dematerializzata) behind
// a booking: the requested service with its NRE and PNGLA priority class.
func (g *gen) cdaSpecialistRx(p *person, rx *cdaRx) {
	c := &g.cda
	b := g.cdaHeader(c.buf[:0], p, cdaDocSpecRx, "2.16.840.1.113883.2.9.10.1.14.1", "PRESCRIZIONE SPECIALISTICA", rx.d, rx.sec, p.region, p.asl, c.r.IntN(15))
	b = append(b, "<component><structuredBody><component><section>"+
		`<code code="57832-8" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Prescrizione specialistica"/>`+
		"<title>Prestazioni richieste</title><text>"...)
	b = appendXML(b, rx.s.Name)
	b = append(b, `</text><entry><observation classCode="OBS" moodCode="RQO"><id root="2.16.840.1.113883.2.9.4.3.8" extension="`...)
	b = append(b, rx.nre...)
	b = append(b, `"/><code code="`...)
	b = appendXML(b, rx.s.Code)
	b = append(b, `" codeSystem="2.16.840.1.113883.2.9.6.1.11" codeSystemName="Catalogo nazionale delle prestazioni" displayName="`...)
	b = appendXML(b, rx.s.Name)
	b = append(b, `"/>`...)
	if rx.prio != "" {
		// The PNGLA class, without HL7 ActPriority's code system: its "P" is another code.
		b = append(b, `<priorityCode code="`...)
		b = append(b, rx.prio...)
		b = append(b, `" codeSystemName="PNGLA classe di priorita"/>`...)
	}
	c.buf = append(b, "</observation></entry></section></component></structuredBody></component></ClinicalDocument>\n"...)
	g.cdaAdd(p, "RX_SPEC")
	g.cdaTally(p, nil)
	g.cdaTally(p, &rx.d) // the document
	g.cdaTally(p, &rx.d) // the prescription
}

// cdaDrugRx renders a drug prescription.
func (g *gen) cdaDrugRx(p *person, m *cdaMed) {
	c := &g.cda
	b := g.cdaHeader(c.buf[:0], p, cdaDocDrugRx, "2.16.840.1.113883.2.9.10.1.14.2", "PRESCRIZIONE FARMACEUTICA", m.d, m.sec, p.region, p.asl, c.r.IntN(15))
	b = append(b, "<component><structuredBody><component><section>"+
		`<code code="57833-6" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Prescrizione farmaceutica"/>`+
		"<title>Farmaci prescritti</title><text>"...)
	b = appendXML(b, m.dr.Name)
	b = append(b, `</text><entry><substanceAdministration classCode="SBADM" moodCode="RQO"><id root="2.16.840.1.113883.2.9.4.3.8" extension="`...)
	b = append(b, m.nre...)
	b = append(b, `"/>`...)
	b = appendProduct(b, m.dr)
	c.buf = append(b, "</substanceAdministration></entry></section></component></structuredBody></component></ClinicalDocument>\n"...)
	g.cdaAdd(p, "RX_DRUG")
	g.cdaTally(p, nil)
	g.cdaTally(p, &m.d)
	g.cdaTally(p, &m.d)
}

// cdaER renders the ER report of emergency encounter ei: triage at arrival, the
// diagnoses made there, and the outcome.
func (g *gen) cdaER(p *person, ei int) {
	c := &g.cda
	e := &g.encs[ei]
	triage := triageCodes[c.triage.pick(c.r)]
	outcome := erOutcomes[c.outc.pick(c.r)]
	b := g.cdaHeader(c.buf[:0], p, docVPS, "2.16.840.1.113883.2.9.10.1.6.1", "VERBALE DI PRONTO SOCCORSO", e.end, e.endSec, e.region, e.asl, e.place)
	// The header's encounter, then the body: cdaHeader leaves the document open after
	// the participants, so componentOf goes here, before the body.
	b = append(b, `<componentOf><encompassingEncounter><effectiveTime><low value="`...)
	b = appendTS(b, e.start, e.startSec)
	b = append(b, `"/><high value="`...)
	b = appendTS(b, e.end, e.endSec)
	b = append(b, `"/></effectiveTime></encompassingEncounter></componentOf>`...)
	b = append(b, "<component><structuredBody><component><section>"+
		`<code code="54094-8" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Triage"/>`+
		`<title>Triage</title><text>Codice di accesso `...)
	b = append(b, triage...)
	b = append(b, `</text><entry><observation classCode="OBS" moodCode="EVN"><code code="11283-9" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Acuity assessment"/><statusCode code="completed"/><effectiveTime value="`...)
	b = appendTS(b, e.start, e.startSec)
	b = append(b, `"/><value xsi:type="CD" code="`...)
	b = append(b, triage...)
	b = append(b, `" codeSystem="`+oidTriage+`"/></observation></entry></section></component>`...)
	var dx []*cdaCond
	for i := range c.conds {
		if c.conds[i].enc == ei {
			dx = append(dx, &c.conds[i])
		}
	}
	if len(dx) > 0 {
		b = append(b, "<component><section>"+
			`<code code="11450-4" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Problem list"/>`+
			`<title>Diagnosi</title><text>`...)
		for _, d := range dx {
			b = appendXML(b, d.display)
			b = append(b, ". "...)
		}
		b = append(b, "</text>"...)
		for _, d := range dx {
			b = append(b, `<entry><observation classCode="OBS" moodCode="EVN"><code code="75326-9" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Problem"/><statusCode code="completed"/><effectiveTime><low value="`...)
			b = appendTS(b, e.start, e.startSec)
			b = append(b, `"/></effectiveTime><value xsi:type="CD" code="`...)
			b = appendXML(b, d.code)
			b = append(b, `" codeSystem="2.16.840.1.113883.6.103" codeSystemName="ICD-9-CM" displayName="`...)
			b = appendXML(b, d.display)
			b = append(b, `"/></observation></entry>`...)
		}
		b = append(b, "</section></component>"...)
	}
	b = append(b, "<component><section>"+
		`<code code="28574-2" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Dimissione"/>`+
		`<title>Esito</title><text>Esito `...)
	b = append(b, outcome...)
	b = append(b, `</text><entry><act classCode="ACT" moodCode="EVN"><code code="dimissione" codeSystem="2.16.840.1.113883.2.9.5.1.4"/><statusCode code="completed"/><effectiveTime value="`...)
	b = appendTS(b, e.end, e.endSec)
	b = append(b, `"/><entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN"><code code="11302-7" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Esito"/><statusCode code="completed"/><value xsi:type="CD" code="`...)
	b = append(b, outcome...)
	b = append(b, `" codeSystem="`+oidEROutcome+`"/></observation></entryRelationship></act></entry></section></component>`...)
	c.buf = append(b, "</structuredBody></component></ClinicalDocument>\n"...)
	g.cdaAdd(p, "VPS")
	g.cdaTally(p, nil)
	g.cdaTally(p, &e.end)   // the document
	g.cdaTally(p, &e.start) // the visit
	for range dx {
		g.cdaTally(p, &e.start)
	}
}

// cdaHeader writes the XML declaration and the ClinicalDocument header up to the body:
// the document's ids, type and date, the patient (identifier, name, address, telecom,
// birth, sex and ASL, like a producer writes them: the leak tests need them there), the
// author and the custodian.
func (g *gen) cdaHeader(b []byte, p *person, docType, template, title string, d day, sec int, region, asl, place int) []byte {
	c := &g.cda
	reg := &fse.Regions[p.region]
	cm := &reg.Comuni[p.comune]
	fac := facility(region, asl, place)
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`+
		`<realmCode code="IT"/><typeId root="2.16.840.1.113883.1.3" extension="POCD_MT000040UV02"/><templateId root="`...)
	b = append(b, template...)
	b = append(b, `"/>`...)
	idStart := len(b)
	b = append(b, `<id root="2.16.840.1.113883.2.9.2.`...)
	b = append(b, fse.Regions[region].Code...)
	b = append(b, `.4.4" extension="`...)
	b = append(b, fac...)
	b = append(b, '.')
	b = appendXML(b, p.ident)
	b = append(b, '.')
	b = appendStamp(b, d, sec)
	b = append(b, '.')
	for range 8 {
		b = append(b, alnum[c.r.IntN(len(alnum))])
	}
	b = append(b, `"/>`...)
	id := string(b[idStart+len(`<id `):])
	b = append(b, `<code code="`...)
	b = append(b, docType...)
	b = append(b, `" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="`...)
	b = appendXML(b, g.plan.docNames[docType])
	b = append(b, `"/><title>`...)
	b = append(b, title...)
	b = append(b, `</title><effectiveTime value="`...)
	b = appendTS(b, d, sec)
	b = append(b, `"/><confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/><languageCode code="it-IT"/><setId `...)
	b = append(b, id...)
	b = append(b, `<versionNumber value="1"/><recordTarget><patientRole><id root="2.16.840.1.113883.2.9.4.3.2" extension="`...)
	b = appendXML(b, p.ident)
	b = append(b, `" assigningAuthorityName="MEF"/><addr use="H"><country>100</country><state>`...)
	b = append(b, reg.Code...)
	b = append(b, `</state><county>`...)
	b = append(b, cm.Sigla...)
	b = append(b, `</county><city>`...)
	b = appendXML(b, cm.Name)
	b = append(b, `</city><censusTract>`...)
	b = append(b, cm.ISTAT...)
	b = append(b, `</censusTract><postalCode>`...)
	if pc := postcodes[cm.ISTAT]; pc[1] > 0 {
		b = append(b, digits(uint64(pc[0]), 5)...)
	}
	b = append(b, `</postalCode><streetAddressLine>`...)
	b = appendXML(b, c.street)
	b = append(b, `</streetAddressLine></addr><telecom use="MC" value="tel:+393`...)
	b = append(b, digits(c.r.Uint64N(1_000_000_000), 9)...)
	b = append(b, `"/><telecom use="HP" value="mailto:`...)
	b = appendEmailPart(b, p.given)
	b = append(b, '.')
	b = appendEmailPart(b, p.surname)
	b = append(b, `@example.it"/><patient><name><family>`...)
	b = appendXML(b, p.surname)
	b = append(b, `</family><given>`...)
	b = appendXML(b, p.given)
	b = append(b, `</given></name><administrativeGenderCode code="`...)
	if p.female {
		b = append(b, 'F')
	} else {
		b = append(b, 'M')
	}
	b = append(b, `" codeSystem="2.16.840.1.113883.5.1"/><birthTime value="`...)
	y, m, dd := p.birth.civil()
	b = append4(b, y)
	b = append2(b, m)
	b = append2(b, dd)
	b = append(b, `"/></patient><providerOrganization><id root="2.16.840.1.113883.2.9.4.1.1" extension="`...)
	b = append(b, reg.ASLs[p.asl]...)
	b = append(b, `"/></providerOrganization></patientRole></recordTarget><author><time value="`...)
	b = appendTS(b, d, sec)
	b = append(b, `"/><assignedAuthor><id root="2.16.840.1.113883.2.9.4.1.2" extension="`...)
	b = append(b, fac...)
	b = append(b, `"/></assignedAuthor></author><custodian><assignedCustodian><representedCustodianOrganization><id root="2.16.840.1.113883.2.9.4.1.2" extension="`...)
	b = append(b, fac...)
	return append(b, `"/></representedCustodianOrganization></assignedCustodian></custodian>`...)
}

// appendProduct writes a consumable coded with AIC and, as a translation, ATC.
func appendProduct(b []byte, d *drug) []byte {
	b = append(b, `<consumable><manufacturedProduct><manufacturedMaterial><code code="`...)
	b = append(b, d.AIC...)
	b = append(b, `" codeSystem="2.16.840.1.113883.2.9.6.1.5" codeSystemName="AIC" displayName="`...)
	b = appendXML(b, d.Name)
	b = append(b, `"><translation code="`...)
	b = append(b, d.ATC...)
	b = append(b, `" codeSystem="2.16.840.1.113883.6.73" codeSystemName="ATC" displayName="`...)
	b = appendXML(b, d.Substance)
	return append(b, `"/></code></manufacturedMaterial></manufacturedProduct></consumable>`...)
}

// appendTS writes an HL7 v3 timestamp, YYYYMMDDhhmmss+0100 (times stay within the day,
// as appendDateTime's do).
func appendTS(b []byte, d day, sec int) []byte {
	b = appendStamp(b, d, min(sec, 86399))
	return append(b, "+0100"...)
}

// appendXML writes s escaped as XML text or attribute content.
func appendXML(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '"':
			b = append(b, "&quot;"...)
		case '\'':
			b = append(b, "&apos;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}
