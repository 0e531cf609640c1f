// Package fse holds the public reference data of the Italian FSE and CUP that Velo
// relies on: regions and their ASLs, comuni, priority classes and PNGLA maximum waits,
// the monitored outpatient services, and the code lists of the canonical tables.
//
// Invariant: everything here is public reference data or policy, never derived from an
// extract. The catalog's public domains and bounds are built from it (docs/ingest.md#catalog), so a
// value read off the data must never be added here.
package fse

import (
	"slices"
	"time"
)

// Region is an Italian region or autonomous province as the Ministry of Health codes it.
type Region struct {
	Code string // "010".."200"
	Name string
	// Population in thousands (ISTAT 2024, approximate); used only to weight synthetic data.
	Population int
	// ASLs are the local health authorities' codes: region code + 3 digits. The list is
	// plausible (the right order of magnitude per region), not the official registry.
	ASLs []string
	// Comuni are a few real comuni of the region, for synthetic addresses and birthplaces.
	Comuni []Comune
}

// Comune is an Italian municipality: ISTAT code (province code + 3 digits) and the
// cadastral (Belfiore) code used in the codice fiscale.
type Comune struct {
	ISTAT    string
	Belfiore string
	Name     string
	Province string // ISTAT province code, the ISTAT code's first three digits
	Sigla    string // two-letter province abbreviation
}

func aslRange(region string, n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = region + itoa3(201+i)
	}
	return out
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)})
}

func c(istat, belfiore, name, sigla string) Comune {
	return Comune{ISTAT: istat, Belfiore: belfiore, Name: name, Province: istat[:3], Sigla: sigla}
}

// Regions lists the 21 regions and autonomous provinces in code order.
var Regions = []Region{
	{"010", "Piemonte", 4252, aslRange("010", 12), []Comune{c("001272", "L219", "Torino", "TO"), c("003106", "F952", "Novara", "NO"), c("004078", "D205", "Cuneo", "CN")}},
	{"020", "Valle d'Aosta", 123, aslRange("020", 1), []Comune{c("007003", "A326", "Aosta", "AO")}},
	{"030", "Lombardia", 10020, aslRange("030", 8), []Comune{c("015146", "F205", "Milano", "MI"), c("017029", "B157", "Brescia", "BS"), c("016024", "A794", "Bergamo", "BG")}},
	{"041", "P.A. Bolzano", 536, aslRange("041", 1), []Comune{c("021008", "A952", "Bolzano", "BZ")}},
	{"042", "P.A. Trento", 545, aslRange("042", 1), []Comune{c("022205", "L378", "Trento", "TN")}},
	{"050", "Veneto", 4851, aslRange("050", 9), []Comune{c("027042", "L736", "Venezia", "VE"), c("023091", "L781", "Verona", "VR"), c("028060", "G224", "Padova", "PD")}},
	{"060", "Friuli-Venezia Giulia", 1195, aslRange("060", 3), []Comune{c("032006", "L424", "Trieste", "TS"), c("030129", "L483", "Udine", "UD")}},
	{"070", "Liguria", 1508, aslRange("070", 5), []Comune{c("010025", "D969", "Genova", "GE"), c("011015", "E463", "La Spezia", "SP"), c("009056", "I480", "Savona", "SV")}},
	{"080", "Emilia-Romagna", 4455, aslRange("080", 8), []Comune{c("037006", "A944", "Bologna", "BO"), c("036023", "F257", "Modena", "MO"), c("034027", "G337", "Parma", "PR")}},
	{"090", "Toscana", 3661, aslRange("090", 3), []Comune{c("048017", "D612", "Firenze", "FI"), c("049009", "E625", "Livorno", "LI"), c("050026", "G702", "Pisa", "PI")}},
	{"100", "Umbria", 856, aslRange("100", 2), []Comune{c("054039", "G478", "Perugia", "PG"), c("055032", "L117", "Terni", "TR")}},
	{"110", "Marche", 1487, aslRange("110", 5), []Comune{c("042002", "A271", "Ancona", "AN"), c("041044", "G479", "Pesaro", "PU")}},
	{"120", "Lazio", 5720, aslRange("120", 10), []Comune{c("058091", "H501", "Roma", "RM"), c("059011", "E472", "Latina", "LT"), c("056059", "M082", "Viterbo", "VT")}},
	{"130", "Abruzzo", 1270, aslRange("130", 4), []Comune{c("066049", "A345", "L'Aquila", "AQ"), c("068028", "G482", "Pescara", "PE")}},
	{"140", "Molise", 290, aslRange("140", 1), []Comune{c("070006", "B519", "Campobasso", "CB"), c("094023", "E335", "Isernia", "IS")}},
	{"150", "Campania", 5594, aslRange("150", 7), []Comune{c("063049", "F839", "Napoli", "NA"), c("065116", "H703", "Salerno", "SA"), c("061022", "B963", "Caserta", "CE")}},
	{"160", "Puglia", 3891, aslRange("160", 6), []Comune{c("072006", "A662", "Bari", "BA"), c("073027", "L049", "Taranto", "TA"), c("075035", "E506", "Lecce", "LE")}},
	{"170", "Basilicata", 533, aslRange("170", 2), []Comune{c("076063", "G942", "Potenza", "PZ"), c("077014", "F052", "Matera", "MT")}},
	{"180", "Calabria", 1838, aslRange("180", 5), []Comune{c("079023", "C352", "Catanzaro", "CZ"), c("078045", "D086", "Cosenza", "CS"), c("080063", "H224", "Reggio Calabria", "RC")}},
	{"190", "Sicilia", 4794, aslRange("190", 9), []Comune{c("082053", "G273", "Palermo", "PA"), c("087015", "C351", "Catania", "CT"), c("083048", "F158", "Messina", "ME")}},
	{"200", "Sardegna", 1570, aslRange("200", 8), []Comune{c("092009", "B354", "Cagliari", "CA"), c("090064", "I452", "Sassari", "SS")}},
}

// RegionCodes returns the codes of Regions in order.
func RegionCodes() []string {
	out := make([]string, len(Regions))
	for i, r := range Regions {
		out[i] = r.Code
	}
	return out
}

// ASLCodes returns every ASL code of every region, sorted.
func ASLCodes() []string {
	var out []string
	for _, r := range Regions {
		out = append(out, r.ASLs...)
	}
	slices.Sort(out)
	return out
}

// RegionByCode finds a region; ok is false for an unknown code.
func RegionByCode(code string) (Region, bool) {
	for _, r := range Regions {
		if r.Code == code {
			return r, true
		}
	}
	return Region{}, false
}

// ProvinceCodes returns the ISTAT province codes of the comuni listed in Regions, sorted.
func ProvinceCodes() []string {
	var out []string
	for _, r := range Regions {
		for _, cm := range r.Comuni {
			out = append(out, cm.Province)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ComuneByISTAT finds a comune of the reference list by ISTAT code.
func ComuneByISTAT(code string) (Comune, Region, bool) {
	for _, r := range Regions {
		for _, cm := range r.Comuni {
			if cm.ISTAT == code {
				return cm, r, true
			}
		}
	}
	return Comune{}, Region{}, false
}

// ServiceKind separates specialist visits from diagnostic tests: PNGLA class D has a
// different maximum wait for each.
type ServiceKind string

const (
	Visit ServiceKind = "visit"
	Test  ServiceKind = "test"
)

// Service is a monitored outpatient service (PNGLA 2019–21 list, a subset).
type Service struct {
	Code string // national nomenclatore code as CUP extracts carry it
	Name string
	Kind ServiceKind
}

// Services is the subset of the 69 PNGLA-monitored services that Velo knows. Codes follow
// the 2019–21 PNGLA table; visits that share the "89.7" family carry the discipline
// suffix regional CUPs add. This list is the public domain of booking.service_code.
var Services = []Service{
	{"89.7A.3", "Prima visita cardiologica", Visit},
	{"89.7A.7", "Prima visita chirurgia vascolare", Visit},
	{"89.7A.8", "Prima visita endocrinologica", Visit},
	{"89.13", "Prima visita neurologica", Visit},
	{"95.02", "Prima visita oculistica", Visit},
	{"89.7B.7", "Prima visita ortopedica", Visit},
	{"89.26", "Prima visita ginecologica", Visit},
	{"89.7B.8", "Prima visita otorinolaringoiatrica", Visit},
	{"89.7C.2", "Prima visita urologica", Visit},
	{"89.7A.9", "Prima visita dermatologica", Visit},
	{"87.37.1", "Mammografia bilaterale", Test},
	{"87.41", "TC del torace", Test},
	{"88.91.1", "RM del cervello e del tronco encefalico", Test},
	{"88.76.1", "Ecografia addome completo", Test},
	{"45.23", "Colonscopia totale con endoscopio flessibile", Test},
	{"45.13", "Esofagogastroduodenoscopia", Test},
	{"89.52", "Elettrocardiogramma", Test},
	{"88.72.3", "Ecocolordoppler cardiaca", Test},
	{"89.37.1", "Spirometria semplice", Test},
	{"93.08.1", "Elettromiografia semplice", Test},
}

// ServiceByCode finds a monitored service; ok is false for an unknown code.
func ServiceByCode(code string) (Service, bool) {
	for _, s := range Services {
		if s.Code == code {
			return s, true
		}
	}
	return Service{}, false
}

// ServiceCodes returns the codes of Services in order.
func ServiceCodes() []string {
	out := make([]string, len(Services))
	for i, s := range Services {
		out[i] = s.Code
	}
	return out
}

// Priority is an outpatient prescription's priority class (PNGLA 2019–21).
type Priority string

const (
	Urgent       Priority = "U" // 72 hours
	Short        Priority = "B" // 10 days
	Deferrable   Priority = "D" // 30 days (visits), 60 days (tests)
	Programmable Priority = "P" // 120 days
)

// Priorities lists the classes in order of urgency.
var Priorities = []Priority{Urgent, Short, Deferrable, Programmable}

// Name is the class's meaning as the PNGLA states it, with its maximum wait.
func (p Priority) Name() string {
	switch p {
	case Urgent:
		return "urgente (within 72 hours)"
	case Short:
		return "breve (within 10 days)"
	case Deferrable:
		return "differibile (within 30 days for visits, 60 for tests)"
	case Programmable:
		return "programmata (within 120 days)"
	}
	return string(p)
}

// ServiceKindName is a kind of service in words.
func ServiceKindName(k ServiceKind) string {
	switch k {
	case Visit:
		return "specialist visit"
	case Test:
		return "diagnostic test"
	}
	return string(k)
}

// ASLName names an ASL code by its region: the codes are plausible, not the official
// registry (Region.ASLs), so no ASL's own name is claimed. ok is false for a code of no
// known region.
func ASLName(code string) (string, bool) {
	if len(code) != 6 {
		return "", false
	}
	r, ok := RegionByCode(code[:3])
	if !ok || !slices.Contains(r.ASLs, code) {
		return "", false
	}
	return "ASL " + code[3:] + " (" + r.Name + ")", true
}

// MaxWaitDays is the PNGLA maximum wait in days for a priority class and kind of service;
// U's 72 hours count as 3 days. ok is false for an unknown class.
func MaxWaitDays(p Priority, k ServiceKind) (days int, ok bool) {
	switch p {
	case Urgent:
		return 3, true
	case Short:
		return 10, true
	case Deferrable:
		if k == Test {
			return 60, true
		}
		return 30, true
	case Programmable:
		return 120, true
	}
	return 0, false
}

// Booking channels and statuses as CUP extracts carry them.
var (
	Channels        = []string{"cup", "phone", "online", "pharmacy"}
	BookingStatuses = []string{"booked", "delivered", "cancelled", "no-show"}
)

// Sexes is the domain of person.sex: administrative gender as the FSE records it.
var Sexes = []string{"F", "M"}

// Document types of the FSE (LOINC), docs/domain.md#the-fse-20-and-its-documents.
var DocumentTypes = []struct{ LOINC, Name string }{
	{"11502-2", "Referto di Laboratorio"},
	{"34105-7", "Lettera di Dimissione Ospedaliera"},
	{"60591-5", "Profilo Sanitario Sintetico"},
	{"68604-8", "Referto di Radiologia"},
	{"11488-4", "Referto di Specialistica Ambulatoriale"},
	{"59258-4", "Verbale di Pronto Soccorso"},
	{"11526-1", "Referto di Anatomia Patologica"},
	{"87273-9", "Singola vaccinazione"},
	{"82593-5", "Certificato vaccinale"},
	{"57833-6", "Prescrizione farmaceutica"},
	{"57832-8", "Prescrizione specialistica"},
}

// DocumentTypeCodes returns the LOINC codes of DocumentTypes.
func DocumentTypeCodes() []string {
	out := make([]string, len(DocumentTypes))
	for i, d := range DocumentTypes {
		out[i] = d.LOINC
	}
	return out
}

// Code system URIs and OIDs as the Gateway examples carry them.
const (
	OIDCodiceFiscale = "2.16.840.1.113883.2.9.4.3.2"
	OIDSTP           = "2.16.840.1.113883.2.9.4.3.17" // Stranieri Temporaneamente Presenti
	OIDENI           = "2.16.840.1.113883.2.9.4.3.18" // Europei Non Iscritti
	OIDTEAMPersonal  = "2.16.840.1.113883.2.9.4.3.3"  // TEAM card: personal identification number
	OIDTEAMCard      = "2.16.840.1.113883.2.9.4.3.7"  // TEAM card number (some CDA templates: the personal number)
	OIDLOINC         = "2.16.840.1.113883.6.1"
	OIDICD9CM        = "2.16.840.1.113883.6.103"
	OIDAIC           = "2.16.840.1.113883.2.9.6.1.5"
	OIDATC           = "2.16.840.1.113883.6.73"
	OIDASL           = "2.16.840.1.113883.2.9.4.1.1"
	OIDFacility      = "2.16.840.1.113883.2.9.4.1.2"

	SystemCodiceFiscale = "urn:oid:" + OIDCodiceFiscale
	// SystemCodiceFiscaleIT is HL7 Italia's FHIR identifier system for the codice fiscale.
	SystemCodiceFiscaleIT = "http://hl7.it/sid/codiceFiscale"
	SystemLOINC           = "http://loinc.org"
	SystemICD9CM          = "http://hl7.org/fhir/sid/icd-9-cm"
	SystemICD9            = "http://hl7.org/fhir/sid/icd-9" // as the Gateway examples write it
	SystemAIC             = "urn:oid:" + OIDAIC
	SystemATC             = "http://www.whocc.no/atc"
	SystemASL             = "urn:oid:" + OIDASL
	SystemUCUM            = "http://unitsofmeasure.org"
	ExtCensusTract        = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-censusTract"
)

// Date is a calendar day; the reference data and the canonical tables keep dates without
// a time of day or zone.
func Date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
