package pseudonymize

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Key is a pseudonymization key: 256 random bits and an id derived from them. The id
// names the key in manifests; it is a one-way function of the key and reveals nothing.
type Key struct {
	ID     string
	secret [32]byte
}

// keyFile is the on-disk form of a key.
type keyFile struct {
	Format string `json:"format"`
	KeyID  string `json:"key_id"`
	Secret string `json:"secret"`
}

const keyFormat = "velo-pseudonymization-key/v1"

// GenerateKey draws a new key from r (crypto/rand.Reader when nil).
func GenerateKey(r io.Reader) (Key, error) {
	if r == nil {
		r = rand.Reader
	}
	var k Key
	if _, err := io.ReadFull(r, k.secret[:]); err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	k.ID = keyID(k.secret)
	return k, nil
}

func keyID(secret [32]byte) string {
	h := sha256.New()
	h.Write([]byte("velo/key-id/v1\x00"))
	h.Write(secret[:])
	return "k_" + hex.EncodeToString(h.Sum(nil)[:8])
}

// WriteKeyFile writes the key to path with mode 0600 and refuses to overwrite an
// existing file.
func WriteKeyFile(path string, k Key) error {
	b, err := json.MarshalIndent(keyFile{Format: keyFormat, KeyID: k.ID, Secret: base64.StdEncoding.EncodeToString(k.secret[:])}, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("key file %s already exists: refusing to overwrite it (a lost key makes every pseudonym unreachable; move it away first if you really mean to replace it)", path)
	}
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync key file %s: %w", path, err)
	}
	return f.Close()
}

// LoadKeyFile reads a key written by WriteKeyFile. It refuses a key file that others
// than its owner may read, and never puts key material in an error.
func LoadKeyFile(path string) (Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Key{}, fmt.Errorf("key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("key file %s has mode %v: it must be readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("key file: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil || kf.Format != keyFormat {
		return Key{}, fmt.Errorf("key file %s is not a Velo key file (want format %q)", path, keyFormat)
	}
	raw, err := base64.StdEncoding.DecodeString(kf.Secret)
	if err != nil || len(raw) != 32 {
		return Key{}, fmt.Errorf("key file %s: secret is not 32 bytes of base64", path)
	}
	var k Key
	copy(k.secret[:], raw)
	k.ID = keyID(k.secret)
	if kf.KeyID != k.ID {
		return Key{}, fmt.Errorf("key file %s: key_id does not match the secret (the file was edited or damaged)", path)
	}
	return k, nil
}
