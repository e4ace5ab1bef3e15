// Builds the package's WebAssembly module (dist/) from the attestlog
// repository around this package, with Go: `npm run build`, and `npm pack`
// (prepack), which refuses to pack a package without its module.
//
//   ATTESTLOG_REPO  the attestlog repository (default: the directory above
//                   this package)
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = dirname(dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
const repo = resolve(process.env.ATTESTLOG_REPO || dirname(pkgDir));
const prepack = process.argv.includes("--prepack");
const dist = join(pkgDir, "dist");

function fail(msg) {
  console.error(`${pkg.name}: ${msg}`);
  process.exit(1);
}

// Why the module cannot be built here ("" if it can).
function cannotBuild() {
  const gomod = join(repo, "go.mod");
  if (!existsSync(gomod) || !/^module\s+github\.com\/attestlog\/attestlog\s*$/m.test(readFileSync(gomod, "utf8"))) {
    return `${repo} is not the attestlog repository (set ATTESTLOG_REPO to it)`;
  }
  const go = spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8" });
  if (go.error || go.status !== 0) return "there is no go command on PATH (install Go, the version the repository's go.mod names)";
  return "";
}

// A release's tag and the package's version must agree: the module
// reports the package's version, `attestlog version` names it.
const tag = spawnSync("git", ["-C", repo, "describe", "--tags", "--exact-match"], { encoding: "utf8" });
if (tag.status === 0) {
  const t = tag.stdout.trim();
  if (/^v\d+\.\d+\.\d+/.test(t) && t.slice(1) !== pkg.version) {
    fail(`the source is tagged ${t} but package.json says version ${pkg.version}: make them agree before packing`);
  }
}

const why = cannotBuild();
if (why === "") {
  const r = spawnSync("go", ["run", "./internal/wasmbuild/build", "-out", dist], { cwd: repo, stdio: "inherit" });
  if (r.status !== 0) fail("building the WebAssembly module failed (see above); nothing was packed");
} else if (!prepack) {
  fail(`cannot build the WebAssembly module: ${why}`);
} else {
  // npm pack without Go: only a module built before, of this version.
  const missing = ["attestlog.wasm", "wasm_exec.js", "build.json", "LICENSES.txt"].filter((f) => !existsSync(join(dist, f)));
  if (missing.length > 0) {
    fail(`refusing to pack: the package would ship without its WebAssembly module (dist/ lacks ${missing.join(", ")}), and it cannot be built here: ${why}`);
  }
  const built = JSON.parse(readFileSync(join(dist, "build.json"), "utf8"));
  if (built.version !== pkg.version) {
    fail(`refusing to pack: dist/ holds a module built as version ${built.version}, not ${pkg.version}, and it cannot be rebuilt here: ${why}`);
  }
  console.error(`${pkg.name}: packing the module built before (${built.revision}, ${built.go}): ${why}`);
}
