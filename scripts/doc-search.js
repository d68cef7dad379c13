// Runs rustdoc's own search engine (the static.files of a `cargo doc` output) over the
// generated search index, the way the docs page does in a browser, and checks that each
// query finds the expected item among its first results.
//
//   node scripts/doc-search.js DOC_DIR CASES_FILE
//
// CASES_FILE: one case a line, `query => expected path`, e.g.
//   put_nowait => pytandem::queue::Queue::try_put
// Blank lines and lines starting with `#` are skipped. Exits 1 if any case fails.
"use strict";
const fs = require("fs");
const path = require("path");

const [docArg, casesFile] = process.argv.slice(2);
if (!docArg || !casesFile) {
    console.error("usage: node scripts/doc-search.js DOC_DIR CASES_FILE");
    process.exit(2);
}
const TOP = 10; // the expected item must be among this many results

function newest(dir, pattern) {
    const hits = fs.readdirSync(dir).filter(f => pattern.test(f))
        .map(f => [f, fs.statSync(path.join(dir, f)).mtimeMs])
        .sort((a, b) => b[1] - a[1]);
    if (hits.length === 0) {
        throw new Error(`no ${pattern} in ${dir}: not a rustdoc output of the stringdex era?`);
    }
    return path.join(dir, hits[0][0]);
}

async function main() {
    // Absolute: `require` reads a bare relative path as a package name.
    const docDir = path.resolve(docArg);
    const statics = path.join(docDir, "static.files");
    const stringdex = require(newest(statics, /^stringdex-.*\.js$/));
    const search = require(newest(statics, /^search-[0-9a-f]+\.js$/));
    const index = path.join(docDir, "search.index");
    // The index files are scripts that call back into the engine (`rr_(...)`, `rd_(...)`,
    // `rn_(...)`): make those callbacks global, then evaluate the files as the page would.
    globalThis.nonnull = (x, msg) => {
        if (x === null) throw new Error(msg || "unexpected null");
        return x;
    };
    const run = file => (0, eval)(fs.readFileSync(file, "utf8"));
    const { docSearch, DocSearch } = await search.initSearch(
        stringdex.Stringdex, stringdex.RoaringBitmap, {
            loadRoot: callbacks => {
                Object.assign(globalThis, callbacks);
                run(path.join(index, "root.js"));
            },
            loadTreeByHash: hash => run(path.join(index, `${hash}.js`)),
            loadDataByNameAndHash: (name, hash) => run(path.join(index, name, `${hash}.js`)),
        });

    const cases = fs.readFileSync(casesFile, "utf8").split("\n")
        .map(l => l.trim()).filter(l => l && !l.startsWith("#"))
        .map(l => l.split("=>").map(s => s.trim()));
    let failed = 0;
    for (const [query, expected] of cases) {
        const result = await docSearch.execQuery(DocSearch.parseQuery(query), null, "");
        const found = [];
        for await (const entry of result.others) {
            const parent = entry.item.parent ? `${entry.item.parent.name}::` : "";
            found.push(`${entry.item.modulePath}::${parent}${entry.item.name}`);
            if (found.length === TOP) break;
        }
        if (!found.includes(expected)) {
            failed += 1;
            console.log(`FAIL ${query}: expected ${expected} in the first ${TOP}, got\n       ` +
                (found.join("\n       ") || "(nothing)"));
        }
    }
    console.log(`${cases.length - failed} of ${cases.length} Python names found`);
    process.exit(failed ? 1 : 0);
}

main().catch(e => { console.error(e); process.exit(1); });
