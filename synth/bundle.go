package synth

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// bundle writes a transaction Bundle for the current person, shaped like the Gateway's
// laboratory report (fixtures FHIR/LAB.json): a Composition, the Patient (the same id and
// content as in Patient.ndjson), an Encounter and 2–6 lab Observations, all referenced by
// fullUrl. The encounter and results are extra facts, not copies of NDJSON records.
func (g *gen) bundle(p *person, patientJSON []byte) {
	r, pl := g.r, g.plan
	d := pl.randDay(r)
	sec := 7*3600 + r.IntN(4*3600)
	e := encounter{id: g.uid(), class: "AMB", start: d, end: d, startSec: sec, endSec: sec + 900, region: p.region, asl: p.asl, place: r.IntN(15)}
	nObs := 2 + r.IntN(5)
	tests := r.Perm(len(labTests))[:nObs]
	obsIDs := make([]uid, nObs)
	for i := range obsIDs {
		obsIDs[i] = g.uid()
	}
	compID, bundleID := g.uid(), g.uid()
	docDate, docSec := d, sec+4*3600
	docID := g.appendDocID(nil, p, docDate, docSec, e.region, e.asl, e.place)

	b := make([]byte, 0, 4096)
	b = append(b, `{"resourceType":"Bundle","id":"`...)
	b = append(b, bundleID[:]...)
	b = append(b, `","identifier":`...)
	b = append(b, docID...)
	b = append(b, `,"type":"transaction","timestamp":"`...)
	b = appendDateTime(b, docDate, docSec+60)
	b = append(b, `","entry":[`...)

	b = appendEntryStart(b, &compID)
	b = append(b, `{"resourceType":"Composition","id":"`...)
	b = append(b, compID[:]...)
	b = append(b, `","language":"it-IT","identifier":`...)
	b = append(b, docID...)
	b = append(b, `,"status":"final","type":{"coding":[`...)
	b = appendCoding(b, "http://loinc.org", docLAB, "Referto di laboratorio")
	b = append(b, `]},"subject":`...)
	b = appendRefStyle(b, refBundle, "Patient", &p.id)
	b = append(b, `,"encounter":`...)
	b = appendRefStyle(b, refBundle, "Encounter", &e.id)
	b = append(b, `,"date":"`...)
	b = appendDateTime(b, docDate, docSec)
	b = append(b, `","author":[{"identifier":{"system":"urn:oid:2.16.840.1.113883.2.9.4.1.2","value":"`...)
	b = append(b, facility(e.region, e.asl, e.place)...)
	b = append(b, `"}}],"title":"REFERTO DI LABORATORIO","section":[{"title":"Esami di chimica clinica","code":{"coding":[`...)
	b = appendCoding(b, "http://loinc.org", "18719-5", "Chemistry studies (set)")
	b = append(b, `]},"entry":[`...)
	for i := range obsIDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRefStyle(b, refBundle, "Observation", &obsIDs[i])
	}
	b = append(b, `]}]}`...)
	b = appendEntryEnd(b, "Composition")

	b = append(b, ',')
	b = appendEntryStart(b, &p.id)
	b = append(b, patientJSON...)
	b = appendEntryEnd(b, "Patient")

	b = append(b, ',')
	b = appendEntryStart(b, &e.id)
	b = appendEncounter(b, &e, p, refBundle)
	b = appendEntryEnd(b, "Encounter")

	for i, ti := range tests {
		t := &labTests[ti]
		v, interp := g.labValue(p, t)
		b = append(b, ',')
		b = appendEntryStart(b, &obsIDs[i])
		b = appendObservation(b, &obsIDs[i], p, &e.id, t, v, interp, d, sec+r.IntN(600), refBundle, false, 0)
		b = appendEntryEnd(b, "Observation")
	}
	b = append(b, `]}`...)

	var out bytes.Buffer
	out.Grow(2 * len(b))
	if err := json.Indent(&out, b, "", "  "); err != nil {
		panic("synth: bundle is not valid JSON: " + err.Error())
	}
	out.WriteByte('\n')

	o := Outcome{Records: int64(3 + nObs)}
	switch {
	case p.kind == kindBad:
		o.Quarantined = o.Records
	case p.optOut:
		o.OptedOut = o.Records
	}
	g.out.bundles = append(g.out.bundles, bundleOut{seq: p.index + 1, data: out.Bytes(), outcome: o})
}

func appendEntryStart(b []byte, id *uid) []byte {
	b = append(b, `{"fullUrl":"urn:uuid:`...)
	b = append(b, id[:]...)
	return append(b, `","resource":`...)
}

func appendEntryEnd(b []byte, typ string) []byte {
	b = append(b, `,"request":{"method":"POST","url":`...)
	b = strconv.AppendQuote(b, typ)
	return append(b, `}}`...)
}
