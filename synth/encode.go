package synth

import (
	"strconv"
	"time"
)

// Resources are rendered by appending bytes rather than through encoding/json: a million
// people make tens of millions of resources, and reflection would dominate the run.
// Every string that is not a constant of this package goes through appendStr.

// day counts days since 1970-01-01; the generator works in whole days and adds a time of
// day only when rendering.
type day int32

func dayOf(t time.Time) day {
	y, m, d := t.Date()
	return civilDay(y, int(m), d)
}

// civilDay and (day).civil are H. Hinnant's days_from_civil and civil_from_days.
func civilDay(y, m, d int) day {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return day(era*146097 + doe - 719468)
}

func (d day) civil() (y, m, dd int) {
	z := int(d) + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	dd = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, dd
}

func (d day) weekday() time.Weekday { return time.Weekday((int(d)%7 + 11) % 7) } // 1970-01-01 was a Thursday

func (d day) String() string { return string(appendDate(nil, d)) }

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10%10), byte('0'+n%10)) }

func append4(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000%10), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// appendDate writes YYYY-MM-DD.
func appendDate(b []byte, d day) []byte {
	y, m, dd := d.civil()
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, m)
	b = append(b, '-')
	return append2(b, dd)
}

// appendDateTime writes YYYY-MM-DDThh:mm:ss+01:00 for a time of day in seconds. Event
// times stay within 07:00–23:59, so the calendar day is the same in UTC and in Italy.
func appendDateTime(b []byte, d day, sec int) []byte {
	b = appendDate(b, d)
	b = append(b, 'T')
	b = append2(b, sec/3600)
	b = append(b, ':')
	b = append2(b, sec/60%60)
	b = append(b, ':')
	b = append2(b, sec%60)
	return append(b, "+01:00"...)
}

// appendStamp writes yyyymmddhhmmss, as document ids carry it.
func appendStamp(b []byte, d day, sec int) []byte {
	y, m, dd := d.civil()
	b = append4(b, y)
	b = append2(b, m)
	b = append2(b, dd)
	b = append2(b, sec/3600)
	b = append2(b, sec/60%60)
	return append2(b, sec%60)
}

const hexDigits = "0123456789abcdef"

// appendStr writes s as a JSON string.
func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func appendFloat(b []byte, v float64, dec int) []byte { return strconv.AppendFloat(b, v, 'f', dec, 64) }

// uid is a UUID-shaped resource id drawn from a person's generator.
type uid [36]byte

func newUID(hi, lo uint64) uid {
	var u uid
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	var raw [16]byte
	for i := range 8 {
		raw[i] = byte(hi >> (56 - 8*i))
		raw[8+i] = byte(lo >> (56 - 8*i))
	}
	j := 0
	for i, x := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			u[j] = '-'
			j++
		}
		u[j], u[j+1] = hexDigits[x>>4], hexDigits[x&15]
		j += 2
	}
	return u
}

// appendRef writes {"reference":"<Type>/<id>"}.
func appendRef(b []byte, typ string, id *uid) []byte {
	b = append(b, `{"reference":"`...)
	b = append(b, typ...)
	b = append(b, '/')
	b = append(b, id[:]...)
	return append(b, `"}`...)
}

// appendCoding writes one coding object.
func appendCoding(b []byte, system, code, display string) []byte {
	b = append(b, `{"system":`...)
	b = appendStr(b, system)
	b = append(b, `,"code":`...)
	b = appendStr(b, code)
	if display != "" {
		b = append(b, `,"display":`...)
		b = appendStr(b, display)
	}
	return append(b, '}')
}
