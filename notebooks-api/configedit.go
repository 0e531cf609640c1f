package notebooksapi

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// AddToken stores a token's hash for user name in the config file at path, keeping the
// file's comments and layout. A user that does not exist yet is added with role and
// projects (role is then required); replace drops the user's earlier tokens. The file is
// validated before it is replaced, atomically.
func AddToken(path, name string, role Role, projects []string, tok Token, replace bool) error {
	return editConfig(path, func(users *yaml.Node) error {
		u := findUser(users, name)
		if u == nil {
			if role == "" {
				return fmt.Errorf("user %q is not in %s: give --role (and --project for a researcher or official) to add it", name, path)
			}
			var n yaml.Node
			if err := n.Encode(User{Name: name, Role: role, Projects: projects}); err != nil {
				return err
			}
			users.Content = append(users.Content, &n)
			u = &n
		} else if role != "" || len(projects) > 0 {
			return fmt.Errorf("user %q already exists: edit its role and projects in %s", name, path)
		}
		toks := mapValue(u, "tokens")
		if toks == nil {
			toks = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			u.Content = append(u.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "tokens"}, toks)
		}
		toks.Style = 0
		if replace {
			toks.Content = nil
		}
		var n yaml.Node
		if err := n.Encode(tok); err != nil {
			return err
		}
		toks.Content = append(toks.Content, &n)
		return nil
	})
}

// RevokeTokens removes every token of user name from the config file and says how many.
func RevokeTokens(path, name string) (int, error) {
	var n int
	err := editConfig(path, func(users *yaml.Node) error {
		u := findUser(users, name)
		if u == nil {
			return fmt.Errorf("user %q is not in %s", name, path)
		}
		if toks := mapValue(u, "tokens"); toks != nil {
			n = len(toks.Content)
			toks.Content = nil
		}
		return nil
	})
	return n, err
}

func editConfig(path string, edit func(users *yaml.Node) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("config %s: not a YAML mapping", path)
	}
	root := doc.Content[0]
	users := mapValue(root, "users")
	if users == nil {
		users = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "users"}, users)
	}
	if users.Kind != yaml.SequenceNode {
		return fmt.Errorf("config %s: users: want a list", path)
	}
	users.Style = 0
	if err := edit(users); err != nil {
		return err
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := enc.Close(); err != nil {
		return err
	}
	if _, err := ParseConfig(out.Bytes()); err != nil {
		return fmt.Errorf("config %s after the change: %w", path, err)
	}
	return writeFileAtomic(path, out.Bytes(), fi.Mode().Perm())
}

// findUser returns the mapping of the user called name in the users sequence.
func findUser(users *yaml.Node, name string) *yaml.Node {
	for _, u := range users.Content {
		if n := mapValue(u, "name"); n != nil && n.Value == name {
			return u
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// WriteConfig writes a new config file (mode 0600), refusing to overwrite one.
func WriteConfig(path string, cfg Config, header string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	var out bytes.Buffer
	out.WriteString(header)
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	_, err = f.Write(out.Bytes())
	return errors.Join(err, f.Sync(), f.Close())
}

func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("config: %w", err)
	}
	if err := errors.Join(tmp.Chmod(perm), tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
