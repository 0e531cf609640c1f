package fse

import (
	"regexp"
	"slices"
	"strings"
)

// Code systems as sources name them. The same code system reaches Velo under several
// names: FHIR writes LOINC as http://loinc.org or urn:oid:2.16.840.1.113883.6.1, CDA
// writes the bare OID, the Gateway's FHIR writes ICD-9-CM as http://hl7.org/fhir/sid/icd-9.
// CanonicalSystem maps every name Velo knows to one, so that a fact coded by OID is read
// like one coded by URI.

const (
	OIDICD9CMProcedures = "2.16.840.1.113883.6.104"
	OIDICD9CMGeneric    = "2.16.840.1.113883.6.2"
	OIDSNOMED           = "2.16.840.1.113883.6.96"
	OIDInterpretation   = "2.16.840.1.113883.5.83"

	SystemSNOMED          = "http://snomed.info/sct"
	SystemICD9CMProcedure = "urn:oid:" + OIDICD9CMProcedures
	SystemInterpretation  = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
)

// systemAliases maps every known name (lower case) of a code system to its canonical one.
var systemAliases = func() map[string]string {
	m := map[string]string{}
	alias := func(canonical string, names ...string) {
		m[strings.ToLower(canonical)] = canonical
		for _, n := range names {
			m[strings.ToLower(n)] = canonical
			if !strings.Contains(n, ":") { // a bare OID: also its urn:oid: form
				m["urn:oid:"+n] = canonical
			}
		}
	}
	alias(SystemLOINC, OIDLOINC)
	alias(SystemICD9CM, SystemICD9, OIDICD9CM, OIDICD9CMGeneric)
	alias(SystemICD9CMProcedure, OIDICD9CMProcedures)
	alias(SystemATC, OIDATC)
	alias(SystemAIC, OIDAIC)
	alias(SystemSNOMED, OIDSNOMED)
	alias(SystemInterpretation, OIDInterpretation)
	return m
}()

// CanonicalSystem is the one name Velo uses for a code system named by URI, urn:oid: or
// bare OID; a system Velo does not know is returned as given (trimmed), but for an OID,
// which is returned bare (urn:oid:2.16.840.1.113883.2.9.6.1.54.4 is
// 2.16.840.1.113883.2.9.6.1.54.4, as CDA writes it).
func CanonicalSystem(s string) string {
	s = strings.TrimSpace(s)
	if c, ok := systemAliases[strings.ToLower(s)]; ok {
		return c
	}
	if len(s) > len("urn:oid:") && strings.EqualFold(s[:len("urn:oid:")], "urn:oid:") && IsOID(s[len("urn:oid:"):]) {
		return s[len("urn:oid:"):]
	}
	return s
}

// IsOID tells whether s has an OID's shape: numbers separated by dots.
func IsOID(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, c := range s {
		if c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// SameSystem tells whether two names name the same code system.
func SameSystem(a, b string) bool { return CanonicalSystem(a) == CanonicalSystem(b) }

var (
	icd9Diagnosis = regexp.MustCompile(`^([0-9]{3})\.?([0-9]{1,2})?$`)
	icd9V         = regexp.MustCompile(`^(V[0-9]{2})\.?([0-9]{1,2})?$`)
	icd9E         = regexp.MustCompile(`^(E[0-9]{3})\.?([0-9])?$`)
	icd9Procedure = regexp.MustCompile(`^([0-9]{2})\.?([0-9]{1,2})?$`)
)

// NormalizeICD9CM gives an ICD-9-CM code its one canonical form, the dotted one the
// classification prints: 4280 and 428.0 are both 428.0, V1052 is V10.52, E8490 is
// E849.0; procedure codes (procedure true) have two digits before the dot (4523 is
// 45.23). ok is false for a code that has neither shape; it is then returned trimmed
// and upper-cased, as given.
func NormalizeICD9CM(code string, procedure bool) (string, bool) {
	c := strings.ToUpper(strings.TrimSpace(code))
	if procedure {
		if m := icd9Procedure.FindStringSubmatch(c); m != nil {
			return join(m[1], m[2]), true
		}
		return c, false
	}
	for _, re := range []*regexp.Regexp{icd9Diagnosis, icd9V, icd9E} {
		if m := re.FindStringSubmatch(c); m != nil {
			return join(m[1], m[2]), true
		}
	}
	return c, false
}

// ICD9CMChapters are the chapters of the ICD-9-CM classification of diseases, by the range
// of three-character categories each covers, then the two supplementary classifications
// (V codes: factors influencing health status; E codes: external causes). They are the
// public domain of diagnosis.chapter.
var ICD9CMChapters = []string{
	"001-139", // infectious and parasitic diseases
	"140-239", // neoplasms
	"240-279", // endocrine, nutritional and metabolic diseases, immunity disorders
	"280-289", // diseases of the blood and blood-forming organs
	"290-319", // mental disorders
	"320-389", // nervous system and sense organs
	"390-459", // circulatory system
	"460-519", // respiratory system
	"520-579", // digestive system
	"580-629", // genitourinary system
	"630-679", // complications of pregnancy, childbirth and the puerperium
	"680-709", // skin and subcutaneous tissue
	"710-739", // musculoskeletal system and connective tissue
	"740-759", // congenital anomalies
	"760-779", // conditions originating in the perinatal period
	"780-799", // symptoms, signs and ill-defined conditions
	"800-999", // injury and poisoning
	"V",       // supplementary: factors influencing health status and contact with services
	"E",       // supplementary: external causes of injury and poisoning
}

// ICD9CMChapter is the chapter (an element of ICD9CMChapters) of an ICD-9-CM diagnosis
// code in any form NormalizeICD9CM accepts; ok is false for anything else, procedure codes
// included.
func ICD9CMChapter(code string) (chapter string, ok bool) {
	c, ok := NormalizeICD9CM(code, false)
	if !ok {
		return "", false
	}
	switch c[0] {
	case 'V':
		return "V", true
	case 'E':
		return "E", true
	}
	n := int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0')
	if n == 0 {
		return "", false // 000 is no category
	}
	for _, ch := range ICD9CMChapters[:17] {
		if hi := int(ch[4]-'0')*100 + int(ch[5]-'0')*10 + int(ch[6]-'0'); n <= hi {
			return ch, true
		}
	}
	return "", false
}

func join(head, tail string) string {
	if tail == "" {
		return head
	}
	return head + "." + tail
}

// ER visit code lists of the national emergency-department flow (EMUR, DM 17 December
// 2008), which the VPS guide's value sets CodiceTriage_VPS (2.16.840.1.113883.2.9.6.1.54.4)
// and EsitoTrattamento_VPS (2.16.840.1.113883.2.9.6.1.54.5) carry. They are the public
// domains of er_visit.triage and er_visit.outcome; a code outside them (a template's
// placeholder such as XXX) is not kept.
var (
	// ERTriageCodes: colour code at access — white, green, yellow, red, black.
	ERTriageCodes = []string{"B", "V", "G", "R", "N"}
	// EROutcomeCodes: outcome of the visit — 1 discharged home, 2 discharged to outpatient
	// care, 3 admitted, 4 transferred to another hospital, 5 died in the ER, 6 refused
	// admission, 7 left before being seen, 8 left during care, 9 dead on arrival.
	EROutcomeCodes = []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}
)

// Observations that are not laboratory results: vital signs and social history. Their
// categories are FHIR's observation-category codes; the code lists are the public domain
// of observation.code. A source may state such an observation under another code (in
// its document's vital-signs or social-history section): it is kept, under its own code.
const (
	CategoryVitalSigns    = "vital-signs"
	CategorySocialHistory = "social-history"
)

// ObservationCategories lists the categories of the observation table.
var ObservationCategories = []string{CategoryVitalSigns, CategorySocialHistory}

var (
	// VitalSignCodes are the LOINC codes of FHIR's vital-signs value set
	// (ValueSet/observation-vitalsignresult): the vital-signs and blood-pressure panels,
	// respiratory rate, heart rate, oxygen saturation, body temperature, height, head
	// circumference, weight, BMI, systolic and diastolic pressure.
	VitalSignCodes = []string{"85353-1", "9279-1", "8867-4", "2708-6", "8310-5", "8302-2", "9843-4", "29463-7", "39156-5", "85354-9", "8480-6", "8462-4"}
	// SocialHistoryCodes are the LOINC codes of the lifestyle observations patient
	// summaries carry: tobacco smoking status, history of tobacco use, cigarettes smoked
	// per day, history of alcohol use, alcoholic drinks per day.
	SocialHistoryCodes = []string{"72166-2", "11367-0", "8663-7", "11331-6", "74013-4"}
)

// ObservationCategory is the category of an observation by its LOINC code alone ("" for a
// code of neither list).
func ObservationCategory(loinc string) string {
	switch {
	case slices.Contains(VitalSignCodes, loinc):
		return CategoryVitalSigns
	case slices.Contains(SocialHistoryCodes, loinc):
		return CategorySocialHistory
	}
	return ""
}

// ObservationCodes is the public domain of observation.code: VitalSignCodes and
// SocialHistoryCodes.
func ObservationCodes() []string {
	return slices.Concat(VitalSignCodes, SocialHistoryCodes)
}

// Sections of the national CDA documents (LOINC) whose observations are vital signs or
// social history, whatever code they carry: the PSS and VPS vital-signs section
// ("Parametri vitali") and the PSS lifestyle section ("Stile di vita").
const (
	SectionVitalSigns    = "8716-3"
	SectionSocialHistory = "29762-2"
)

// Diagnosis roles: what a diagnosis is in the document that states it. They are Velo's
// labels (the public domain of diagnosis.role), each from a LOINC observation code of the
// national documents:
//
//	problem    a problem or condition of the patient's history or problem list (75326-9
//	           Problem; a FHIR Condition)
//	admission  the diagnosis at hospital admission (8646-2, LDO)
//	principal  the principal diagnosis at hospital discharge: the first discharge
//	           diagnosis (8651-2) the letter states, as the SDO lists the principal first
//	secondary  every further discharge diagnosis of the letter
//	diagnosis  a diagnosis a report states (29308-4 Diagnosis: specialist, radiology,
//	           pathology and ER reports)
//	reason     the reason for the visit stated as a diagnosis (29298-7)
const (
	RoleProblem   = "problem"
	RoleAdmission = "admission"
	RolePrincipal = "principal"
	RoleSecondary = "secondary"
	RoleDiagnosis = "diagnosis"
	RoleReason    = "reason"
)

// DiagnosisRoles lists the roles.
var DiagnosisRoles = []string{RoleProblem, RoleAdmission, RolePrincipal, RoleSecondary, RoleDiagnosis, RoleReason}

// LOINC codes of the observations that state a diagnosis.
const (
	LOINCProblem            = "75326-9"
	LOINCAdmissionDiagnosis = "8646-2"
	LOINCDischargeDiagnosis = "8651-2"
	LOINCDiagnosis          = "29308-4"
	LOINCReasonForVisit     = "29298-7"
)

// DiagnosisRole is the role of a diagnosis stated by an observation with this LOINC code
// ("" for a code that states none). A discharge diagnosis is RolePrincipal; the mapping
// makes every one after the document's first RoleSecondary.
func DiagnosisRole(loinc string) string {
	switch loinc {
	case LOINCProblem:
		return RoleProblem
	case LOINCAdmissionDiagnosis:
		return RoleAdmission
	case LOINCDischargeDiagnosis:
		return RolePrincipal
	case LOINCDiagnosis:
		return RoleDiagnosis
	case LOINCReasonForVisit:
		return RoleReason
	}
	return ""
}
