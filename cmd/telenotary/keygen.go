package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/telenotary/telenotary/notary"
)

func runKeygen(_ context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "keygen", "keygen --name NAME [--dir DIR]")
	name := fs.String("name", "", "the signer's name, as verifiers will see it (e.g. notary-1.example.org); required")
	dir := fs.String("dir", ".", "directory to write NAME.key (secret, mode 0600) and NAME.pub into")
	if err := parseFlagsOnly(fs, env, args); err != nil {
		return usageError(env.stderr, "keygen", err)
	}
	if err := checkKeyName(*name); err != nil {
		return usageError(env.stderr, "keygen", err)
	}
	failed := func(err error) int { return failure(env.stderr, "keygen", err) }
	signer, verifier, err := notary.GenerateKey(*name)
	if err != nil {
		return failed(err)
	}
	keyPath := filepath.Join(*dir, *name+".key")
	pubPath := filepath.Join(*dir, *name+".pub")
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return failed(fmt.Errorf("%s already exists; move it away first, a node's key must not be replaced by accident", p))
		}
	}
	if err := writeNew(keyPath, signer+"\n", 0o600); err != nil {
		return failed(err)
	}
	if err := writeNew(pubPath, verifier+"\n", 0o644); err != nil {
		os.Remove(keyPath)
		return failed(err)
	}
	fmt.Fprintf(env.stdout, "signer key:   %s (secret: give it only to the node; mode 0600)\n", keyPath)
	fmt.Fprintf(env.stdout, "verifier key: %s (public: give it to everyone who verifies receipts)\n", pubPath)
	fmt.Fprintf(env.stdout, "  %s\n", verifier)
	return exitOK
}

// checkKeyName explains what note key names may be.
func checkKeyName(name string) error {
	switch {
	case name == "":
		return errors.New("--name is required, e.g. --name notary-1.example.org")
	case strings.ContainsRune(name, '+'):
		return fmt.Errorf("--name %q: a key name cannot contain '+'", name)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("--name %q: a key name cannot contain spaces or control characters", name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("--name %q: a key name cannot contain slashes (it names the key files)", name)
	}
	return nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path, content string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
