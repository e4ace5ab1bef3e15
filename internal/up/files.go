package up

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// upManifest is DIR/.up-files.json: the SHA-256 of each file 'up' wrote,
// as it wrote it, so that a later start can tell a file the user edited
// from one it may regenerate.
const upManifest = ".up-files.json"

// writeGenerated writes the files 'up' generates (name → content) into dir
// without ever losing a user's edit:
//   - a missing file is written;
//   - a file whose content is what up would write now is left alone;
//   - a file unchanged since up wrote it (its hash is the manifest's) is
//     one nobody edited: it is replaced when up's content for it changed
//     (a new --listen address, a new version of up);
//   - a file the user edited is kept as it is and used; if up's content
//     for it changed since, the new content goes beside it as NAME.new,
//     with a note saying so.
//
// It returns those notes.
func writeGenerated(dir string, files map[string]string) ([]string, error) {
	mpath := filepath.Join(dir, upManifest)
	manifest := map[string]string{}
	if b, err := os.ReadFile(mpath); err == nil {
		if err := json.Unmarshal(b, &manifest); err != nil {
			return nil, fmt.Errorf("%s: %w (delete it and 'up' treats every existing file as edited)", mpath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var notes []string
	for _, name := range names {
		content := []byte(files[name])
		want := hashHex(content)
		path := filepath.Join(dir, name)
		cur, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.WriteFile(path, content, 0o644); err != nil {
				return nil, err
			}
			manifest[name] = want
		case err != nil:
			return nil, err
		case hashHex(cur) == want:
			manifest[name] = want
			os.Remove(path + ".new") // an earlier proposal, now merged
		case manifest[name] == want:
			// Edited, and up's content is what it was: the edit stands.
		case manifest[name] != "" && hashHex(cur) == manifest[name]:
			// Not edited since up wrote it: up's to replace.
			if err := os.WriteFile(path, content, 0o644); err != nil {
				return nil, err
			}
			manifest[name] = want
		default:
			// Edited, and up's content changed (or up never recorded
			// writing it): keep it; propose the new content beside it.
			if err := os.WriteFile(path+".new", content, 0o644); err != nil {
				return nil, err
			}
			notes = append(notes, fmt.Sprintf("%s was edited, so 'up' keeps it and runs with it; what 'up' would write now (a new address or version) is in %s.new — merge what you need, or delete %s to get the new one", path, path, name))
		}
	}
	b, _ := json.MarshalIndent(manifest, "", "  ")
	if err := os.WriteFile(mpath, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return notes, nil
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
