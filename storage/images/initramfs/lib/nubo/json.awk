# json.awk: flatten a JSON document into one "path<TAB>value" line per string, number or boolean.
# Paths join object keys and array indexes with "/": {"public_keys": {"k": "ssh-ed25519 …"}} gives
# "public_keys/k<TAB>ssh-ed25519 …"; {"keys": [{"data": "…"}]} gives "keys/0/data<TAB>…".
# String escapes \" \\ \/ are decoded; the others (\n, \t, \uXXXX …) are kept as written, so that
# every value stays on one line. Good enough for OpenStack's meta_data.json; not a validator.
{ doc = doc $0 "\n" }
END {
    pos = 1
    n = length(doc)
    value("")
}

function ws() {
    while (pos <= n && index(" \t\r\n", substr(doc, pos, 1)) > 0) pos++
}

function str(    out, c, e) {
    out = ""
    pos++ # the opening quote
    while (pos <= n) {
        c = substr(doc, pos, 1)
        if (c == "\"") { pos++; return out }
        if (c == "\\") {
            e = substr(doc, pos + 1, 1)
            if (e == "\"" || e == "\\" || e == "/") out = out e
            else out = out c e
            pos += 2
            continue
        }
        out = out c
        pos++
    }
    return out
}

function join(path, key) {
    return path == "" ? key : path "/" key
}

function value(path,    c, key, idx, lit) {
    ws()
    c = substr(doc, pos, 1)
    if (c == "{") {
        pos++
        ws()
        if (substr(doc, pos, 1) == "}") { pos++; return }
        while (pos <= n) {
            ws()
            if (substr(doc, pos, 1) != "\"") { pos = n + 1; return } # malformed: stop
            key = str()
            ws()
            if (substr(doc, pos, 1) == ":") pos++
            value(join(path, key))
            ws()
            c = substr(doc, pos, 1)
            pos++
            if (c != ",") return
        }
    } else if (c == "[") {
        pos++
        ws()
        if (substr(doc, pos, 1) == "]") { pos++; return }
        idx = 0
        while (pos <= n) {
            value(join(path, idx))
            idx++
            ws()
            c = substr(doc, pos, 1)
            pos++
            if (c != ",") return
        }
    } else if (c == "\"") {
        print path "\t" str()
    } else {
        lit = ""
        while (pos <= n && index(",}] \t\r\n", substr(doc, pos, 1)) == 0) {
            lit = lit substr(doc, pos, 1)
            pos++
        }
        if (lit != "null" && lit != "") print path "\t" lit
    }
}
