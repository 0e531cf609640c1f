package dataset

import (
	"github.com/velo-fse/velo/fse"
)

// Labels are the public names of a domain's codes (region "120" is Lazio, priority "B" is
// breve, within 10 days), by domain name as the catalog names it, from the reference data
// in package fse only: never from the data. A domain without names (booleans, channels,
// the period) has none.
//
// Labels are not written into catalog.json: ReadCatalog attaches them when it reads the
// catalog. The data directory then holds no display text that the sources also carry (ingest's
// tests hold every byte of it free of the sources' longer values, names included), and the
// names follow the reference data of the binary that serves them.
func Labels(domain string) map[string]string {
	switch domain {
	case "region":
		return labels(fse.RegionCodes(), func(c string) string { r, _ := fse.RegionByCode(c); return r.Name })
	case "asl":
		return labels(fse.ASLCodes(), func(c string) string { n, _ := fse.ASLName(c); return n })
	case "service_code":
		return labels(fse.ServiceCodes(), func(c string) string { s, _ := fse.ServiceByCode(c); return s.Name })
	case "service_kind":
		return labels([]fse.ServiceKind{fse.Visit, fse.Test}, fse.ServiceKindName)
	case "priority":
		return labels(fse.Priorities, fse.Priority.Name)
	case "sex":
		return map[string]string{"F": "female", "M": "male"}
	case "document_type":
		out := map[string]string{}
		for _, d := range fse.DocumentTypes {
			out[d.LOINC] = d.Name
		}
		return out
	}
	return nil
}

// labels names each code with name, leaving out codes it has no name for.
func labels[T ~string](codes []T, name func(T) string) map[string]string {
	out := map[string]string{}
	for _, c := range codes {
		if n := name(c); n != "" && n != string(c) {
			out[string(c)] = n
		}
	}
	return out
}

// attachLabels gives each of the catalog's domains its Labels, keeping only the codes the
// domain lists.
func (c *Catalog) attachLabels() {
	for name, d := range c.Domains {
		all := Labels(name)
		if len(all) == 0 {
			continue
		}
		d.Labels = map[string]string{}
		for _, v := range d.Values {
			if s, ok := v.(string); ok && all[s] != "" {
				d.Labels[s] = all[s]
			}
		}
		c.Domains[name] = d
	}
}
