package synth

// Tables of the generator's own model: names, streets, postcodes, diagnoses, lab tests,
// drugs, vaccines, and the waiting-time factors. Public reference data (regions, ASLs,
// comuni, services, priority classes) comes from package fse; what is here is either
// common knowledge used only to look realistic (names, streets) or a modelling choice
// (prevalences, wait factors), never a fact an analysis should rely on.

// Name lists. Codes matter more than spelling: within each list every name yields a
// distinct codice fiscale name code (names_internal_test.go checks it), which is what
// makes every synthetic person's codice fiscale unique (see person.go).
var (
	surnames = [nSurnames]string{
		"Rossi", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno",
		"Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti", "Barbieri",
		"Fontana", "Santoro", "Rinaldi", "Caruso", "Leone", "Longo", "Gentile", "Vitale", "Serra", "Coppola",
		"De Santis", "D'Angelo", "Marchetti", "Parisi", "Villa", "Fabbri", "Grasso", "Valentini", "Messina", "Sala",
		"Gatti", "Pellegrini", "Palumbo", "Sanna", "Farina", "Monti", "Cattaneo", "Morelli", "Amato", "Silvestri",
		"Mazza", "Testa", "Carbone", "Giuliani", "Benedetti", "Caputo", "Guerra", "Fiore", "De Rosa", "Bellini",
		"Basile", "Riva", "Donati", "Battaglia", "Sartori", "Neri", "Milani", "Pagano", "Ruggiero", "D'Amico",
		"Orlando", "Negri", "Mele", "Bassi", "Cirillo", "Pace", "Bonetti", "Marras", "Fumagalli", "Brambilla",
		"Lanza", "Pugliese", "Calabrese", "Napolitano", "Cocco", "Melis", "Porcu", "Fadda", "Deiana", "Zanetti",
		"Pavan", "Zanella", "Furlan", "De Marco", "Di Stefano", "Lo Russo",
	}
	femaleNames = [nGiven]string{
		"Maria", "Anna", "Giulia", "Francesca", "Sara", "Laura", "Valentina", "Chiara", "Alessandra", "Federica",
		"Elena", "Silvia", "Martina", "Paola", "Roberta", "Giovanna", "Rosa", "Antonella", "Barbara", "Simona",
		"Elisa", "Monica", "Cristina", "Angela", "Daniela", "Lucia", "Teresa", "Giuseppina", "Carmela", "Patrizia",
		"Sofia", "Aurora", "Alice", "Ginevra", "Emma", "Giorgia", "Greta", "Beatrice", "Anna Maria", "Caterina",
		"Ilaria", "Marta", "Serena", "Claudia", "Veronica", "Michela", "Rita", "Stefania", "Manuela", "Luisa",
		"Irene", "Noemi", "Bianca", "Arianna", "Camilla", "Vittoria", "Nicoletta", "Loredana", "Carla", "Graziella",
	}
	maleNames = [nGiven]string{
		"Giuseppe", "Giovanni", "Antonio", "Mario", "Luigi", "Francesco", "Angelo", "Vincenzo", "Pietro", "Salvatore",
		"Carlo", "Domenico", "Bruno", "Paolo", "Michele", "Giorgio", "Aldo", "Sergio", "Luciano", "Marco",
		"Andrea", "Alessandro", "Luca", "Matteo", "Lorenzo", "Leonardo", "Gabriele", "Riccardo", "Davide", "Stefano",
		"Roberto", "Massimo", "Fabio", "Simone", "Daniele", "Federico", "Emanuele", "Claudio", "Enrico", "Nicola",
		"Alberto", "Giacomo", "Filippo", "Tommaso", "Edoardo", "Diego", "Cristian", "Raffaele", "Gianluca", "Maurizio",
		"Fabrizio", "Alessio", "Gennaro", "Ciro", "Vittorio", "Renato", "Umberto", "Walter", "Rocco", "Ettore",
	}
	foreignSurnames = [nForeignSurnames]string{
		"Popescu", "Hoxha", "Wang", "Singh", "El Amrani", "Kumar", "Ionescu", "Shehu", "Chen", "Benali",
		"Kovalenko", "Santos", "Rahman", "Hossain", "Nguyen", "Mohamed", "Ahmed", "Ali", "Khan", "Dumitru",
		"Zhang", "Liu", "Garcia", "Diallo",
	}
	foreignFemaleNames = [nForeignGiven]string{
		"Elena", "Ioana", "Andreea", "Fatima", "Mei", "Priya", "Olena", "Maria", "Ana", "Aisha",
		"Nadia", "Xiaoling", "Daniela", "Mihaela", "Amina", "Leila", "Khadija", "Oksana", "Rosa", "Jing",
	}
	foreignMaleNames = [nForeignGiven]string{
		"Ion", "Andrei", "Mohamed", "Ahmed", "Wei", "Raj", "Arben", "Ali", "Youssef", "Omar",
		"Dmytro", "Jose", "Carlos", "Rahim", "Hassan", "Mihai", "Vasile", "Gheorghe", "Bogdan", "Karim",
	}
)

// country is a foreign birth country: its cadastral code in the codice fiscale and its
// share among foreign-born residents (ISTAT, rounded; only the ranking matters).
type country struct {
	Belfiore, Name string
	Weight         float64
}

// countries has exactly nCountries entries, all with distinct cadastral codes.
var countries = [nCountries]country{
	{"Z129", "Romania", 20},
	{"Z100", "Albania", 10},
	{"Z330", "Marocco", 10},
	{"Z138", "Ucraina", 6},
	{"Z210", "Cina", 6},
	{"Z222", "India", 4},
	{"Z216", "Filippine", 4},
	{"Z249", "Bangladesh", 4},
	{"Z336", "Egitto", 4},
	{"Z236", "Pakistan", 3},
	{"Z140", "Moldavia", 3},
	{"Z611", "Peru", 3},
}

var streets = []string{
	"Via Garibaldi", "Via Roma", "Corso Vittorio Emanuele II", "Via Mazzini", "Via Cavour",
	"Piazza della Repubblica", "Via Dante Alighieri", "Via Marconi", "Viale Europa", "Via XX Settembre",
	"Via Verdi", "Via Matteotti", "Via Gramsci", "Via San Francesco", "Via Manzoni",
	"Via Leopardi", "Via dei Mille", "Via Nazionale", "Via Trieste", "Via Armando Diaz",
}

// postcodes maps a comune's ISTAT code to its first postcode and how many consecutive
// codes the city uses (1 for a single-code comune).
var postcodes = map[string][2]int{
	"001272": {10121, 36}, "003106": {28100, 1}, "004078": {12100, 1}, "007003": {11100, 1},
	"015146": {20121, 42}, "017029": {25121, 16}, "016024": {24121, 9}, "021008": {39100, 1},
	"022205": {38121, 3}, "027042": {30121, 54}, "023091": {37121, 22}, "028060": {35121, 23},
	"032006": {34121, 28}, "030129": {33100, 1}, "010025": {16121, 45}, "011015": {19121, 17},
	"009056": {17100, 1}, "037006": {40121, 21}, "036023": {41121, 6}, "034027": {43121, 6},
	"048017": {50121, 22}, "049009": {57121, 8}, "050026": {56121, 7}, "054039": {6121, 14},
	"055032": {5100, 1}, "042002": {60121, 11}, "041044": {61121, 2}, "058091": {118, 82},
	"059011": {4100, 1}, "056059": {1100, 1}, "066049": {67100, 1}, "068028": {65121, 9},
	"070006": {86100, 1}, "094023": {86170, 1}, "063049": {80121, 27}, "065116": {84121, 15},
	"061022": {81100, 1}, "072006": {70121, 11}, "073027": {74121, 7}, "075035": {73100, 1},
	"076063": {85100, 1}, "077014": {75100, 1}, "079023": {88100, 1}, "078045": {87100, 1},
	"080063": {89121, 15}, "082053": {90121, 30}, "087015": {95121, 11}, "083048": {98121, 48},
	"092009": {9121, 14}, "090064": {7100, 1},
}

// ageBands holds the resident population by five-year band 0–4 .. 95–99 (ISTAT 2024,
// thousands, rounded): the median falls near 48.
var ageBands = [nAgeBands]float64{
	1950, 2350, 2700, 2850, 2950, 3100, 3250, 3500, 4000, 4600,
	4900, 4800, 4200, 3700, 3400, 3000, 2300, 1400, 600, 150,
}

// Condition flags drive lab values and test choice.
const (
	flagDiabetes uint8 = 1 << iota
	flagLipids
	flagKidney
	flagThyroid
	flagCancer
)

// diagnosis is an ICD-9-CM code with a crude prevalence model: zero below MinAge,
// P40 at age 40 and P80 at age 80, linear in between (and beyond, clamped).
type diagnosis struct {
	Code, Display string
	Sex           byte // 'F', 'M', or 0 for both
	MinAge        int
	P40, P80      float64
	Flag          uint8
	Drugs         []string // ATC codes from drugs, chosen one per patient
}

// chronic diagnoses, prevalence over the extract period (per person).
var chronic = []diagnosis{
	{"401.9", "Ipertensione essenziale non specificata", 0, 25, 0.12, 0.55, 0, []string{"C09AA05", "C08CA01", "C07AB07"}},
	{"250.00", "Diabete mellito tipo II senza menzione di complicazioni, non definito se scompensato", 0, 25, 0.03, 0.17, flagDiabetes, []string{"A10BA02", "A10BA02", "A10AE04"}},
	{"272.4", "Altre e non specificate iperlipidemie", 0, 30, 0.08, 0.30, flagLipids, []string{"C10AA05", "C10AA01"}},
	{"414.01", "Aterosclerosi coronarica di arteria coronarica nativa", 0, 45, 0.005, 0.09, 0, []string{"B01AC06", "C10AA05"}},
	{"427.31", "Fibrillazione atriale", 0, 50, 0.003, 0.10, 0, []string{"B01AF02", "B01AA03"}},
	{"428.0", "Insufficienza cardiaca congestizia non specificata", 0, 50, 0.002, 0.07, 0, []string{"C03CA01", "C07AB07"}},
	{"496", "Ostruzioni croniche delle vie respiratorie, non classificate altrove", 0, 40, 0.01, 0.08, 0, []string{"R03BB04"}},
	{"493.90", "Asma, non specificata, senza menzione di stato asmatico", 0, 3, 0.05, 0.04, 0, []string{"R03AC02", "R03AK07"}},
	{"714.0", "Artrite reumatoide", 'F', 20, 0.008, 0.012, 0, []string{"L04AX03"}},
	{"715.90", "Osteoartrosi, non specificata se generalizzata o localizzata, sede non specificata", 0, 40, 0.03, 0.25, 0, []string{"N02BE01", "M01AE01"}},
	{"296.30", "Disturbo depressivo maggiore, episodio ricorrente, non specificato", 0, 16, 0.02, 0.025, 0, []string{"N06AB06", "N06AB05"}},
	{"311", "Disturbo depressivo, non classificato altrove", 0, 14, 0.04, 0.06, 0, []string{"N06AB06"}},
	{"300.00", "Stato d'ansia, non specificato", 0, 14, 0.05, 0.05, 0, []string{"N05BA12"}},
	{"244.9", "Ipotiroidismo non specificato", 'F', 15, 0.06, 0.10, flagThyroid, []string{"H03AA01"}},
	{"585.3", "Malattia renale cronica, stadio III (moderata)", 0, 45, 0.005, 0.09, flagKidney, []string{"C03CA01"}},
	{"530.81", "Reflusso esofageo", 0, 18, 0.06, 0.10, 0, []string{"A02BC02", "A02BC01"}},
	{"562.10", "Diverticolosi del colon (senza menzione di emorragia)", 0, 40, 0.02, 0.12, 0, nil},
	{"174.9", "Tumori maligni della mammella (donna), sede non specificata", 'F', 30, 0.006, 0.03, flagCancer, []string{"L02BG04"}},
	{"185", "Tumori maligni della prostata", 'M', 50, 0.0, 0.05, flagCancer, nil},
	{"153.9", "Tumori maligni del colon, sede non specificata", 0, 45, 0.0, 0.012, flagCancer, nil},
	{"162.9", "Tumori maligni di bronchi e polmone, non specificato", 0, 45, 0.0, 0.008, flagCancer, nil},
	{"274.9", "Gotta, non specificata", 'M', 30, 0.01, 0.04, 0, []string{"M04AA01"}},
	{"600.00", "Ipertrofia (benigna) della prostata senza ostruzione urinaria", 'M', 45, 0.0, 0.25, 0, []string{"G04CA02"}},
	{"733.00", "Osteoporosi, non specificata", 'F', 50, 0.0, 0.20, 0, []string{"M05BA04"}},
	{"345.90", "Epilessia, non specificata, senza menzione di epilessia intrattabile", 0, 1, 0.006, 0.006, 0, []string{"N03AX14"}},
	{"332.0", "Morbo di Parkinson", 0, 55, 0.0, 0.02, 0, []string{"N04BA02"}},
	{"331.0", "Malattia di Alzheimer", 0, 65, 0.0, 0.04, 0, []string{"N06DA02"}},
}

// chemoFollowUp is recorded for some patients with a cancer diagnosis.
var chemoFollowUp = diagnosis{Code: "V58.11", Display: "Controllo per chemioterapia antineoplastica"}

// acute diagnoses are recorded at emergency visits and admissions; Inpatient marks the
// ones that lead to admission rather than an emergency-room visit only.
var acute = []struct {
	Code, Display string
	Inpatient     bool
	Elderly       bool
}{
	{"786.50", "Dolore toracico, non specificato", false, false},
	{"789.00", "Dolore addominale, sede non specificata", false, false},
	{"465.9", "Infezioni acute delle prime vie respiratorie, sede non specificata", false, false},
	{"780.60", "Febbre, non specificata", false, false},
	{"599.0", "Infezione del sistema urinario, sede non specificata", false, false},
	{"845.00", "Distorsione e distrazione della caviglia, sede non specificata", false, false},
	{"824.8", "Frattura della caviglia, non specificata, chiusa", true, false},
	{"540.9", "Appendicite acuta senza menzione di peritonite", true, false},
	{"574.20", "Calcolosi della colecisti senza menzione di colecistite, senza ostruzione", true, false},
	{"486", "Polmonite, agente non specificato", true, true},
	{"820.8", "Frattura del collo del femore, parte non specificata, chiusa", true, true},
	{"434.91", "Occlusione di arteria cerebrale non specificata, con infarto cerebrale", true, true},
	{"410.91", "Infarto miocardico acuto, sede non specificata, episodio iniziale di assistenza", true, true},
}

// drug is a medicinal product: AIC code (plausible 9-digit codes, not the registry's),
// product name, ATC code (real) and substance.
type drug struct {
	AIC, Name, ATC, Substance string
}

var drugs = []drug{
	{"027344013", "Ramipril 5 mg compresse", "C09AA05", "ramipril"},
	{"027432028", "Amlodipina 10 mg compresse", "C08CA01", "amlodipine"},
	{"028768075", "Bisoprololo 2,5 mg compresse", "C07AB07", "bisoprolol"},
	{"029223054", "Metformina 1000 mg compresse rivestite", "A10BA02", "metformin"},
	{"035942022", "Insulina glargine 100 U/ml soluzione iniettabile", "A10AE04", "insulin glargine"},
	{"034427019", "Atorvastatina 20 mg compresse rivestite", "C10AA05", "atorvastatin"},
	{"033124041", "Simvastatina 20 mg compresse rivestite", "C10AA01", "simvastatin"},
	{"024840074", "Acido acetilsalicilico 100 mg compresse gastroresistenti", "B01AC06", "acetylsalicylic acid"},
	{"040117067", "Apixaban 5 mg compresse rivestite", "B01AF02", "apixaban"},
	{"016366027", "Warfarin sodico 5 mg compresse", "B01AA03", "warfarin"},
	{"021473039", "Furosemide 25 mg compresse", "C03CA01", "furosemide"},
	{"035305016", "Tiotropio 18 mcg polvere per inalazione", "R03BB04", "tiotropium bromide"},
	{"023893034", "Salbutamolo 100 mcg sospensione pressurizzata per inalazione", "R03AC02", "salbutamol"},
	{"036327033", "Budesonide/formoterolo 160/4,5 mcg polvere per inalazione", "R03AK07", "formoterol and budesonide"},
	{"029536024", "Metotrexato 2,5 mg compresse", "L04AX03", "methotrexate"},
	{"012745093", "Paracetamolo 500 mg compresse", "N02BE01", "paracetamol"},
	{"025212046", "Ibuprofene 400 mg compresse rivestite", "M01AE01", "ibuprofen"},
	{"027949051", "Sertralina 50 mg compresse rivestite", "N06AB06", "sertraline"},
	{"026997010", "Paroxetina 20 mg compresse rivestite", "N06AB05", "paroxetine"},
	{"025980055", "Alprazolam 0,25 mg compresse", "N05BA12", "alprazolam"},
	{"023418024", "Levotiroxina sodica 75 mcg compresse", "H03AA01", "levothyroxine sodium"},
	{"035519023", "Pantoprazolo 20 mg compresse gastroresistenti", "A02BC02", "pantoprazole"},
	{"027020047", "Omeprazolo 20 mg capsule rigide gastroresistenti", "A02BC01", "omeprazole"},
	{"022913062", "Allopurinolo 300 mg compresse", "M04AA01", "allopurinol"},
	{"033890017", "Tamsulosina 0,4 mg capsule rigide a rilascio modificato", "G04CA02", "tamsulosin"},
	{"033415044", "Letrozolo 2,5 mg compresse rivestite", "L02BG04", "letrozole"},
	{"036853012", "Acido alendronico 70 mg compresse", "M05BA04", "alendronic acid"},
	{"034763035", "Levetiracetam 500 mg compresse rivestite", "N03AX14", "levetiracetam"},
	{"025330038", "Levodopa/carbidopa 250/25 mg compresse", "N04BA02", "levodopa and decarboxylase inhibitor"},
	{"033364069", "Donepezil 10 mg compresse rivestite", "N06DA02", "donepezil"},
	{"026089019", "Amoxicillina/acido clavulanico 875/125 mg compresse rivestite", "J01CR02", "amoxicillin and beta-lactamase inhibitor"},
	{"030852017", "Prednisone 25 mg compresse", "H02AB07", "prednisone"},
}

// acuteDrugs are prescribed after emergency visits.
var acuteDrugs = []string{"J01CR02", "M01AE01", "N02BE01", "H02AB07"}

// Vaccines (AIC plausible, ATC real; COVID-19 as J07BX03, the code used through 2023).
const (
	vacFlu = iota
	vacCovid
	vacPneumo
	vacHexa
	vacMMR
	vacHPV
	vacZoster
	vacMenB
	vacDTaP
)

var vaccines = []drug{
	vacFlu:    {"045326018", "Vaccino influenzale tetravalente inattivato", "J07BB02", "influenza, inactivated, split virus or surface antigen"},
	vacCovid:  {"049269018", "Vaccino a mRNA anti-COVID-19", "J07BX03", "covid-19 vaccines"},
	vacPneumo: {"038962010", "Vaccino pneumococcico coniugato", "J07AL02", "pneumococcus, purified polysaccharides antigen conjugated"},
	vacHexa:   {"034960017", "Vaccino esavalente DTPa-HBV-IPV-Hib", "J07CA09", "diphtheria-hemophilus influenzae B-pertussis-poliomyelitis-tetanus-hepatitis B"},
	vacMMR:    {"033613017", "Vaccino morbillo, parotite, rosolia vivo attenuato", "J07BD52", "measles, combinations with mumps and rubella, live attenuated"},
	vacHPV:    {"044186016", "Vaccino papillomavirus umano 9-valente", "J07BM03", "papillomavirus (human types 6, 11, 16, 18, 31, 33, 45, 52, 58)"},
	vacZoster: {"046237012", "Vaccino herpes zoster ricombinante adiuvato", "J07BK03", "zoster, purified antigen"},
	vacMenB:   {"042806013", "Vaccino meningococcico gruppo B", "J07AH09", "meningococcus B, multicomponent vaccine"},
	vacDTaP:   {"035438035", "Vaccino difterite, tetano, pertosse acellulare (dTpa)", "J07AJ52", "pertussis, purified antigen, combinations with toxoids"},
}

// labTest is a LOINC laboratory test with a reference range (sex-specific where the
// F fields are set), a value distribution, and a shifted distribution for patients
// carrying Flag. Log means the value is lognormal: Mean is the median, SD the sigma.
type labTest struct {
	Code, Display, Unit string
	Dec                 int
	Low, High           float64
	FLow, FHigh         float64
	Log                 bool
	Mean, SD, FMean     float64
	Flag                uint8
	FlagMean, FlagSD    float64
	Min                 float64
	P, FlagP            float64 // chance of being in a panel, without and with Flag
}

var labTests = []labTest{
	{Code: "2345-7", Display: "Glucose [Mass/volume] in Serum or Plasma", Unit: "mg/dL", Low: 70, High: 100, Mean: 88, SD: 10, Flag: flagDiabetes, FlagMean: 150, FlagSD: 40, Min: 40, P: 0.85, FlagP: 0.98},
	{Code: "4548-4", Display: "Hemoglobin A1c/Hemoglobin.total in Blood", Unit: "%", Dec: 1, Low: 4, High: 6, Mean: 5.4, SD: 0.35, Flag: flagDiabetes, FlagMean: 7.3, FlagSD: 1.1, Min: 3.5, P: 0.05, FlagP: 0.9},
	{Code: "2093-3", Display: "Cholesterol [Mass/volume] in Serum or Plasma", Unit: "mg/dL", Low: 120, High: 200, Mean: 190, SD: 35, Flag: flagLipids, FlagMean: 238, FlagSD: 40, Min: 90, P: 0.6, FlagP: 0.95},
	{Code: "2085-9", Display: "Cholesterol in HDL [Mass/volume] in Serum or Plasma", Unit: "mg/dL", Low: 40, High: 90, Mean: 50, SD: 12, FMean: 61, Min: 18, P: 0.5, FlagP: 0.9, Flag: flagLipids, FlagMean: 46, FlagSD: 11},
	{Code: "13457-7", Display: "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", Unit: "mg/dL", Low: 0, High: 130, Mean: 115, SD: 30, Flag: flagLipids, FlagMean: 158, FlagSD: 35, Min: 30, P: 0.45, FlagP: 0.9},
	{Code: "2571-8", Display: "Triglyceride [Mass/volume] in Serum or Plasma", Unit: "mg/dL", Low: 0, High: 150, Log: true, Mean: 105, SD: 0.45, Flag: flagDiabetes, FlagMean: 160, FlagSD: 0.5, Min: 30, P: 0.5, FlagP: 0.8},
	{Code: "2160-0", Display: "Creatinine [Mass/volume] in Serum or Plasma", Unit: "mg/dL", Dec: 2, Low: 0.7, High: 1.2, FLow: 0.5, FHigh: 1.0, Mean: 0.95, SD: 0.15, FMean: 0.75, Flag: flagKidney, FlagMean: 1.9, FlagSD: 0.4, Min: 0.3, P: 0.7, FlagP: 1},
	{Code: "718-7", Display: "Hemoglobin [Mass/volume] in Blood", Unit: "g/dL", Dec: 1, Low: 13, High: 17, FLow: 12, FHigh: 15.5, Mean: 14.8, SD: 1.2, FMean: 13.2, Flag: flagKidney, FlagMean: 11.5, FlagSD: 1.3, Min: 6, P: 0.7, FlagP: 0.95},
	{Code: "6690-2", Display: "Leukocytes [#/volume] in Blood by Automated count", Unit: "10*3/uL", Dec: 2, Low: 4, High: 10, Mean: 6.9, SD: 1.8, Flag: flagCancer, FlagMean: 5.0, FlagSD: 2.2, Min: 1.2, P: 0.65, FlagP: 0.95},
	{Code: "777-3", Display: "Platelets [#/volume] in Blood by Automated count", Unit: "10*3/uL", Low: 150, High: 400, Mean: 250, SD: 60, Flag: flagCancer, FlagMean: 210, FlagSD: 80, Min: 20, P: 0.65, FlagP: 0.95},
	{Code: "1742-6", Display: "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", Unit: "U/L", Low: 7, High: 40, Log: true, Mean: 22, SD: 0.4, Min: 4, P: 0.5},
	{Code: "1920-8", Display: "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", Unit: "U/L", Low: 8, High: 40, Log: true, Mean: 23, SD: 0.35, Min: 5, P: 0.45},
	{Code: "3016-3", Display: "Thyrotropin [Units/volume] in Serum or Plasma", Unit: "m[IU]/L", Dec: 2, Low: 0.4, High: 4, Log: true, Mean: 1.7, SD: 0.5, Flag: flagThyroid, FlagMean: 4.2, FlagSD: 0.6, Min: 0.01, P: 0.15, FlagP: 0.9},
	{Code: "2951-2", Display: "Sodium [Moles/volume] in Serum or Plasma", Unit: "mmol/L", Low: 135, High: 145, Mean: 140, SD: 2.6, Min: 120, P: 0.3, FlagP: 0.8, Flag: flagKidney, FlagMean: 139, FlagSD: 3.2},
	{Code: "2823-3", Display: "Potassium [Moles/volume] in Serum or Plasma", Unit: "mmol/L", Dec: 1, Low: 3.5, High: 5.1, Mean: 4.3, SD: 0.4, Flag: flagKidney, FlagMean: 4.9, FlagSD: 0.5, Min: 2.5, P: 0.35, FlagP: 0.9},
	{Code: "14957-5", Display: "Microalbumin [Mass/volume] in Urine", Unit: "mg/L", Low: 0, High: 20, Log: true, Mean: 8, SD: 0.7, Flag: flagDiabetes, FlagMean: 25, FlagSD: 0.9, Min: 1, P: 0.02, FlagP: 0.5},
}

// regionWait scales waiting times by the region that provides the service: the
// north-south gradient of the national monitoring reports, as a model (1 = national
// median). It also makes regions with short waits attract patients from others.
var regionWait = map[string]float64{
	"010": 1.00, "020": 0.90, "030": 0.95, "041": 0.85, "042": 0.78, "050": 0.75, "060": 0.90,
	"070": 1.05, "080": 0.72, "090": 0.85, "100": 1.10, "110": 1.05, "120": 1.20, "130": 1.20,
	"140": 1.30, "150": 1.35, "160": 1.25, "170": 1.20, "180": 1.40, "190": 1.30, "200": 1.35,
}

// serviceModel holds, per service code, how often it is booked (Weight), how long its
// waits run relative to others (Wait: colonoscopy, MRI and the eye visit are notoriously
// long), who gets it (Sex, MinAge), and which report follows delivery (Doc).
type serviceModel struct {
	Weight, Wait float64
	Sex          byte
	MinAge       int
	Child        bool // booked for children too
	Doc          string
	Pathology    bool // may also produce a pathology report (endoscopies)
}

var serviceModels = map[string]serviceModel{
	"89.7A.3": {Weight: 8, Wait: 1.15, MinAge: 18, Doc: docRSA},
	"89.7A.7": {Weight: 2, Wait: 1.0, MinAge: 40, Doc: docRSA},
	"89.7A.8": {Weight: 4, Wait: 1.3, MinAge: 14, Doc: docRSA},
	"89.13":   {Weight: 4, Wait: 1.2, MinAge: 14, Doc: docRSA},
	"95.02":   {Weight: 8, Wait: 1.5, Child: true, Doc: docRSA},
	"89.7B.7": {Weight: 7, Wait: 1.1, Child: true, Doc: docRSA},
	"89.26":   {Weight: 5, Wait: 0.9, Sex: 'F', MinAge: 14, Doc: docRSA},
	"89.7B.8": {Weight: 4, Wait: 0.9, Child: true, Doc: docRSA},
	"89.7C.2": {Weight: 3, Wait: 1.0, Sex: 'M', MinAge: 30, Doc: docRSA},
	"89.7A.9": {Weight: 5, Wait: 1.25, Child: true, Doc: docRSA},
	"87.37.1": {Weight: 5, Wait: 1.2, Sex: 'F', MinAge: 40, Doc: docRAD},
	"87.41":   {Weight: 3, Wait: 1.1, MinAge: 30, Doc: docRAD},
	"88.91.1": {Weight: 4, Wait: 1.45, MinAge: 14, Doc: docRAD},
	"88.76.1": {Weight: 7, Wait: 1.0, Child: true, Doc: docRAD},
	"45.23":   {Weight: 3, Wait: 1.6, MinAge: 40, Doc: docRSA, Pathology: true},
	"45.13":   {Weight: 3, Wait: 1.3, MinAge: 30, Doc: docRSA, Pathology: true},
	"89.52":   {Weight: 9, Wait: 0.6, MinAge: 14, Doc: docRSA},
	"88.72.3": {Weight: 5, Wait: 1.25, MinAge: 30, Doc: docRAD},
	"89.37.1": {Weight: 3, Wait: 0.8, MinAge: 14, Doc: docRSA},
	"93.08.1": {Weight: 2, Wait: 1.2, MinAge: 25, Doc: docRSA},
}

// unknownServices are real nomenclatore codes that are not monitored services: a
// booking carrying one is a deliberately bad record.
var unknownServices = []string{"89.01", "90.62.2", "88.73.1", "89.7.99"}

// Document types (LOINC) the generator writes as DocumentReference.type; prescriptions
// travel as MedicationRequest and ServiceRequest instead.
const (
	docLAB  = "11502-2"
	docLDO  = "34105-7"
	docPSS  = "60591-5"
	docRAD  = "68604-8"
	docRSA  = "11488-4"
	docVPS  = "59258-4"
	docRAP  = "11526-1"
	docVACC = "87273-9"
)
