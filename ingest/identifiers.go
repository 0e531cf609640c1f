package ingest

import (
	"regexp"
	"strings"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/pseudonymize"
)

// The person identifier, as Italian FHIR and CDA carry it (docs/domain.md, "The codice fiscale"; HL7 Italia's
// CDA header templates and FHIR base profile): the codice fiscale under the MEF's OID or
// HL7 Italia's FHIR system; an STP or ENI code under its national OID, HL7 Italia's
// system (national or regional) or a regional person-registry root
// (2.16.840.1.113883.2.9.2.<region or ASL>.4.1); a TEAM card's personal number under the
// TEAM OIDs. Other identifiers of a patient (regional registry numbers, hospital ids)
// are not the person's identifier and are dropped.

// idKind is what an identifier system says its values are.
type idKind uint8

const (
	idOther  idKind = iota
	idCF            // codice fiscale (or, as producers send them, STP/ENI/temporary codes)
	idSTPENI        // STP or ENI code
	idTEAM          // TEAM personal number
)

var regionalPersonRoot = regexp.MustCompile(`^urn:oid:2\.16\.840\.1\.113883\.2\.9\.2\.[0-9]{1,9}\.4\.1(\.[0-9]{1,3})?$`)

// hl7ItRegionalSID matches HL7 Italia's regional STP/ENI systems, e.g. http://hl7.it/sid/lazio/stp.
var hl7ItRegionalSID = regexp.MustCompile(`^https?://hl7\.it/sid/[a-z]+/(stp|eni)$`)

func identifierKind(system string) idKind {
	s := strings.TrimSpace(system)
	l := strings.ToLower(s)
	switch l {
	case strings.ToLower(fse.SystemCodiceFiscale), strings.ToLower(fse.SystemCodiceFiscaleIT):
		return idCF
	case "urn:oid:" + fse.OIDSTP, "urn:oid:" + fse.OIDENI, "http://hl7.it/sid/stp", "http://hl7.it/sid/eni":
		return idSTPENI
	case "urn:oid:" + fse.OIDTEAMPersonal, "urn:oid:" + fse.OIDTEAMCard, "http://hl7.it/sid/team":
		return idTEAM
	}
	if hl7ItRegionalSID.MatchString(l) || regionalPersonRoot.MatchString(l) {
		return idSTPENI
	}
	return idOther
}

// personID is the outcome of choosing a patient's identifier.
type personID struct {
	id      pseudonymize.Identifier
	warning string // a counted warning (a valid code under an unexpected system), or ""
	reason  string // why nothing was accepted (quarantine reason), or ""
}

// choosePersonID picks the person identifier among a patient's identifiers: a valid one
// under a system that carries person identifiers, by preference codice fiscale, then
// STP/ENI, then TEAM; else a valid codice fiscale, STP or ENI code under any other system,
// accepted with a warning that names the system. When nothing is valid the reason names
// what was found: each identifier's system and shape, never its value.
func choosePersonID(ids []fhirIdentifier) personID {
	var firstErr error
	for _, want := range []idKind{idCF, idSTPENI, idTEAM} {
		for _, id := range ids {
			if identifierKind(id.System) != want {
				continue
			}
			var (
				pi  pseudonymize.Identifier
				err error
			)
			switch want {
			case idTEAM:
				pi, err = pseudonymize.ParseTEAM(id.Value)
			case idSTPENI:
				pi, err = pseudonymize.ParseIdentifier(id.Value)
				if err == nil && pi.Kind != pseudonymize.KindSTP && pi.Kind != pseudonymize.KindENI {
					// A regional registry number under a regional root is not the person's
					// national identifier.
					pi, err = pseudonymize.Identifier{}, pseudonymize.ErrIdentifierMalformed
				}
			default:
				pi, err = pseudonymize.ParseIdentifier(id.Value)
			}
			if err == nil {
				return personID{id: pi}
			}
			if firstErr == nil && (want != idSTPENI || looksPersonal(id.Value)) {
				firstErr = err
			}
		}
	}
	for _, id := range ids {
		if identifierKind(id.System) != idOther {
			continue
		}
		pi, err := pseudonymize.ParseIdentifier(id.Value)
		if err == nil && (pi.Kind == pseudonymize.KindCodiceFiscale || pi.Kind == pseudonymize.KindSTP || pi.Kind == pseudonymize.KindENI) {
			return personID{id: pi, warning: warnIdentifierUnexpectedSystem + " " + describeSystem(id.System)}
		}
		if firstErr == nil && looksPersonal(id.Value) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = pseudonymize.ErrIdentifierMissing
	}
	return personID{reason: "patient identifier: " + firstErr.Error() + " (" + foundIdentifiers(ids) + ")"}
}

// looksPersonal tells whether a value has the length of a codice fiscale, an STP/ENI or a
// temporary code, so that its error (a wrong check letter) is the one worth reporting.
func looksPersonal(v string) bool {
	n := len(strings.TrimSpace(v))
	return n == 16 || n == 11
}

// foundIdentifiers lists what a patient carried, for a quarantine reason.
func foundIdentifiers(ids []fhirIdentifier) string {
	var parts []string
	for _, id := range ids {
		if strings.TrimSpace(id.System) == "" && strings.TrimSpace(id.Value) == "" {
			continue
		}
		if strings.TrimSpace(id.Value) == "" {
			// A root alone is the whole identifier (HL7 v3 II): never named.
			parts = append(parts, "an id without extension")
		} else {
			parts = append(parts, describeSystem(id.System)+" "+pseudonymize.Shape(strings.TrimSpace(id.Value)))
		}
		if len(parts) == 4 {
			parts = append(parts, "...")
			break
		}
	}
	if len(parts) == 0 {
		return "found none"
	}
	return "found " + strings.Join(parts, "; ")
}

// describeSystem names an identifier system in a reason or a warning: an OID or URI as
// given, masked where it holds something shaped like an identifier, and cut short.
func describeSystem(system string) string {
	s := strings.TrimSpace(system)
	if s == "" {
		return "(no system)"
	}
	s = pseudonymize.MaskIdentifiers(s)
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
