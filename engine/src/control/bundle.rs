//! `bundle export` and `bundle import`: log entries carried in a file (spec/bundle.md). Export
//! streams section by section into a temporary file that is synced and then renamed; import
//! checks every section, ingests each entry as if a peer had sent it (through the engine, so
//! projections, acknowledgements and events follow as after a sync), and reports precisely
//! what it could not take.

use std::collections::BTreeSet;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{BundleCommand, Cx, Out};
use crate::bundle::{self as fmt, BundleError, SectionHeader, Toc};
use crate::codec::Bytes;
use crate::log::Entry;
use crate::store::IngestReport;

pub fn bundle(cx: &Cx, out: &mut Out, cmd: &BundleCommand) -> Result<u8> {
    match cmd {
        BundleCommand::Export { file, for_contacts, all, full, with_files } => {
            export(cx, out, Path::new(file), for_contacts, *all, *full, *with_files)
        }
        BundleCommand::Import { file } => import(cx, out, Path::new(file)),
        BundleCommand::Replay { file } => replay(out, Path::new(file)),
    }
}

/// The audit of a bundle without importing it: each log it carries, every entry re-validated
/// in order from the first one carried (from genesis when that is seq 1), decoded.
fn replay(out: &mut Out, file: &Path) -> Result<u8> {
    use crate::log::{ChainPoint, validate_next};
    // Per log: author, where its chain stands, the rows shown, the first failure.
    type Replayed = ([u8; 32], Option<ChainPoint>, Vec<Value>, Option<String>);
    let mut logs: Vec<Replayed> = Vec::new();
    let mut blob_failures: Vec<String> = Vec::new();
    let mut grants: Vec<Value> = Vec::new();
    let mut read = read_bundle(
        file,
        |_, _| {},
        |section| {
            let entries = match section {
                Section::Entries(e) => e,
                // A blob section is checked against its root (what only a file message can
                // vouch for is not shown).
                Section::Blob(p) => {
                    if let Err(e) = crate::blob::decode_response(&p.root, p.size, &[p.range], p.bao) {
                        blob_failures.push(format!(
                            "blob {}: chunks {}..{} do not verify ({e})",
                            hex::encode(&p.root[..6]),
                            p.range.0,
                            p.range.1
                        ));
                    }
                    return Ok(());
                }
                Section::Grant(g) => {
                    grants.push(json!({ "device": hex::encode(g.device), "tags": g.tags.len() }));
                    return Ok(());
                }
            };
            for e in entries {
                let author = e.header().author.0;
                let i = match logs.iter().position(|(a, ..)| *a == author) {
                    Some(i) => i,
                    None => {
                        logs.push((author, None, Vec::new(), None));
                        logs.len() - 1
                    }
                };
                let (_, at, rows, failure) = &mut logs[i];
                if failure.is_some() {
                    continue;
                }
                // A log carried from later than seq 1 is checked from its first entry on.
                let check = match at.as_ref() {
                    None if e.header().seq > 1 => crate::log::check_payload(e.header(), e.payload.as_deref())
                        .and_then(|()| crate::log::verify_signature(&e))
                        .map(|()| ChainPoint::of(&e)),
                    prev => validate_next(prev, &e),
                };
                match check {
                    Ok(p) => *at = Some(p),
                    Err(err) => *failure = Some(format!("seq {}: {err}", e.header().seq)),
                }
                rows.push(super::render::entry_json(&e, true));
            }
            Ok(())
        },
    )?;
    read.problems.extend(blob_failures);
    let verified = logs.iter().all(|(.., f)| f.is_none()) && read.complete && read.problems.is_empty();
    let v = json!({
        "file": file.display().to_string(),
        "complete": read.complete,
        "problems": read.problems,
        "verified": verified,
        "grants": grants,
        "logs": logs.iter().map(|(a, _, rows, failure)| json!({
            "author": hex::encode(a),
            "verified": failure.is_none(),
            "failure": failure,
            "entries": rows,
        })).collect::<Vec<_>>(),
    });
    out.set(&v, || {
        let mut s = String::new();
        for (a, _, rows, failure) in &logs {
            s += &format!("log {}\n", hex::encode(a));
            for r in rows {
                s += &super::render::entry_line(r);
            }
            if let Some(f) = failure {
                s += &format!("VERIFICATION FAILED at {f}\n");
            }
        }
        for g in &grants {
            s += &format!(
                "grants of device {}: {} tags, signature verified\n",
                g["device"].as_str().unwrap_or(""),
                g["tags"]
            );
        }
        for p in &read.problems {
            s += &format!("{p}\n");
        }
        s += if verified { "verified: every log carried is intact\n" } else { "NOT VERIFIED\n" };
        s
    });
    Ok(if verified { 0 } else { 1 })
}

/// The logs a bundle for these contacts carries: what a session with each of their devices
/// would offer; or every log held.
fn logs_for(cx: &Cx, for_contacts: &[String], all: bool) -> Result<BTreeSet<[u8; 32]>> {
    cx.read(|n| {
        if all {
            return Ok(n.store.heads().map(|(a, _)| a).collect());
        }
        let mut logs = BTreeSet::new();
        for c in for_contacts {
            let user = n.contact(c)?;
            for cert in n.device_certs(&user)? {
                logs.extend(n.offer_set(cert.body.device.as_bytes())?);
            }
        }
        Ok(logs)
    })
}

fn export(
    cx: &Cx,
    out: &mut Out,
    file: &Path,
    for_contacts: &[String],
    all: bool,
    full: bool,
    with_files: bool,
) -> Result<u8> {
    if for_contacts.is_empty() && !all {
        bail!("say who the bundle is for (--for CONTACT, several allowed) or --all");
    }
    // What each recipient was sent before: a log starts after the least any of them has
    // (whole logs with --all or --full).
    let recipients: Vec<crate::identity::UserId> =
        cx.read(|n| for_contacts.iter().map(|c| Ok(n.contact(c)?)).collect::<Result<Vec<_>>>())?;
    let sent: Vec<std::collections::BTreeMap<[u8; 32], u64>> = if all || full {
        Vec::new()
    } else {
        cx.read(|n| recipients.iter().map(|u| Ok(n.store.known_heads(u)?)).collect::<Result<Vec<_>>>())?
    };
    // A recipient has its own logs: they are carried only for the other recipients.
    let own: Vec<BTreeSet<[u8; 32]>> = cx.read(|n| {
        recipients
            .iter()
            .map(|u| {
                let mut keys: BTreeSet<[u8; 32]> =
                    n.device_certs(u)?.iter().map(|c| *c.body.device.as_bytes()).collect();
                keys.insert(*u.as_bytes());
                Ok(keys)
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let start = |author: &[u8; 32]| -> u64 {
        if !all && !own.is_empty() && own.iter().all(|k| k.contains(author)) {
            return u64::MAX;
        }
        let known = |i: usize| sent.get(i).and_then(|m| m.get(author).copied()).unwrap_or(0);
        (0..recipients.len().max(1))
            .filter(|i| !own.get(*i).is_some_and(|k| k.contains(author)))
            .map(known)
            .min()
            .unwrap_or(0)
            + 1
    };
    // Device logs first: a device log names its user (its first entry carries the user's
    // certificate), so a reader who takes the device log then wants the user log after it.
    let logs: Vec<[u8; 32]> = {
        let set = logs_for(cx, for_contacts, all)?;
        let users: BTreeSet<[u8; 32]> =
            cx.read(|n| Ok(n.store.trust().users.keys().map(|u| *u.as_bytes()).collect()))?;
        let (u, d): (Vec<[u8; 32]>, Vec<[u8; 32]>) = set.into_iter().partition(|a| users.contains(a));
        d.into_iter().chain(u).collect()
    };
    let heads: std::collections::BTreeMap<[u8; 32], u64> =
        cx.read(|n| Ok(logs.iter().map(|a| (*a, n.store.head(a).map_or(0, |h| h.seq))).collect()))?;
    let total: u64 = heads.iter().map(|(a, h)| h.saturating_sub(start(a).saturating_sub(1))).sum();
    let tmp = file.with_extension("libra-partial");
    let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = BufWriter::new(f);
    w.write_all(fmt::MAGIC)?;
    let (mut toc, mut pending, mut pending_bytes, mut entries) = (Toc::new(), Vec::new(), 0usize, 0u64);
    let flush = |w: &mut BufWriter<std::fs::File>, pending: &mut Vec<Entry>, toc: &mut Toc| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let count = u32::try_from(pending.len())?;
        let s = fmt::section(fmt::KIND_ENTRIES, count, &fmt::entries_body(pending));
        let sum: [u8; fmt::CHECKSUM] = s[s.len() - fmt::CHECKSUM..].try_into()?;
        toc.push((fmt::KIND_ENTRIES, count, Bytes(sum)));
        w.write_all(&s)?;
        pending.clear();
        Ok(())
    };
    for author in &logs {
        let mut seq = start(author);
        if seq == u64::MAX {
            continue;
        }
        loop {
            // A page at a time: memory stays bounded whatever the log's length.
            let page = cx.read(|n| Ok(n.store.read_log(author, seq, 1000)?))?;
            let Some(last) = page.last() else { break };
            seq = last.header().seq + 1;
            cx.report("export", entries + page.len() as u64, total);
            for e in page {
                pending_bytes += e.encode().len() + 4;
                pending.push(e);
                entries += 1;
                if pending.len() >= fmt::SECTION_ENTRIES || pending_bytes >= fmt::SECTION_BYTES {
                    flush(&mut w, &mut pending, &mut toc)?;
                    pending_bytes = 0;
                }
            }
        }
        // A section per log (or per few thousand entries): damage costs one log's part.
        flush(&mut w, &mut pending, &mut toc)?;
        pending_bytes = 0;
    }
    flush(&mut w, &mut pending, &mut toc)?;
    // After the entries (a reader that does not know blob sections still takes every entry).
    let files = if with_files {
        let carried = |author: &[u8; 32], seq: u64| logs.contains(author) && seq >= start(author);
        write_blobs(cx, &mut w, &mut toc, if all { &[] } else { &recipients }, carried)?
    } else {
        0
    };
    // Our grants, signed: a mutual contact who imports this may forward our logs to the people
    // we chose, as after a session with us (spec/bundle.md, section 1.1).
    let (grant, granted) = cx.read(|n| {
        let tags = if n.user_id().is_some() { n.grant_tags()? } else { Vec::new() };
        Ok((fmt::grant_body(&n.secrets.device.signing, crate::clock::wall_ms(), &tags), tags.len()))
    })?;
    if granted > 0 {
        let count = u32::try_from(granted)?;
        let s = fmt::section(fmt::KIND_GRANT, count, &grant);
        let sum: [u8; fmt::CHECKSUM] = s[s.len() - fmt::CHECKSUM..].try_into()?;
        toc.push((fmt::KIND_GRANT, count, Bytes(sum)));
        w.write_all(&s)?;
    }
    let sections = toc.len();
    w.write_all(&fmt::section(fmt::KIND_TOC, u32::try_from(sections)?, &fmt::toc_body(&toc)))?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(&tmp, file).with_context(|| format!("renaming into {}", file.display()))?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    // Only once the file is in place: what each recipient has been sent.
    cx.write(|n| {
        for u in &recipients {
            n.store.raise_known_heads(u, &heads)?;
        }
        Ok(())
    })?;
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let v = json!({ "file": file.display().to_string(), "logs": logs.len(), "entries": entries, "files": files, "grants": granted, "sections": sections, "bytes": bytes });
    out.set(&v, || {
        format!(
            "wrote {} entries of {} logs{} in {sections} sections ({bytes} bytes) to {}\n",
            entries,
            logs.len(),
            if with_files { format!(" and {files} files") } else { String::new() },
            file.display()
        )
    });
    Ok(0)
}

/// Writes a blob section for every 8 MiB of each complete blob whose message is carried;
/// returns how many files.
fn write_blobs(
    cx: &Cx,
    w: &mut impl Write,
    toc: &mut Toc,
    recipients: &[crate::identity::UserId],
    carried: impl Fn(&[u8; 32], u64) -> bool,
) -> Result<usize> {
    use crate::blob::{Request, Status};
    use crate::store::blobs::BlobState;
    let files = cx.read(|n| {
        let mut out = Vec::new();
        for f in n.store.files()?.into_iter().filter(|f| !f.deleted) {
            // Only files of chats a recipient is in (with --all: every file): nobody carries
            // blobs they cannot open, nor learns their sizes.
            let members = n.chat(&f.row.chat.to_hex()).map(|c| c.users).unwrap_or_default();
            if !recipients.is_empty() && !recipients.iter().any(|r| members.contains(r)) {
                continue;
            }
            if let Some(e) = n.store.get(&f.id)?
                && carried(&e.header().author.0, e.header().seq)
            {
                out.push(f.row.file);
            }
        }
        Ok(out)
    })?;
    let blobs = cx.engine.blobs();
    let mut done = BTreeSet::new();
    for f in files {
        if blobs.state(&f.root.0) != BlobState::Complete || !done.insert(f.root.0) {
            continue;
        }
        let (size, chunks) = (f.blob_size(), f.blob_size().div_ceil(1024).max(1));
        let mut s = 0;
        while s < chunks {
            let e = (s + fmt::BLOB_SECTION_CHUNKS).min(chunks);
            let (status, bao) = blobs.serve(&Request { root: f.root.0, ranges: vec![(s, e)] });
            if status != Status::Ok {
                bail!("{}: the stored blob cannot be read ({status:?})", f.name);
            }
            let count = u32::try_from(e - s)?;
            let section = fmt::section(fmt::KIND_BLOB, count, &fmt::blob_body(&f.root.0, size, (s, e), &bao));
            let sum: [u8; fmt::CHECKSUM] = section[section.len() - fmt::CHECKSUM..].try_into()?;
            toc.push((fmt::KIND_BLOB, count, Bytes(sum)));
            w.write_all(&section)?;
            s = e;
        }
    }
    Ok(done.len())
}

/// What an import did, for the report.
#[derive(Default)]
struct Tally {
    sections: usize,
    report: IngestReport,
    not_for_us: usize,
    problems: Vec<String>,
    complete: bool,
}

impl Tally {
    fn take(&mut self, rep: IngestReport) {
        self.report.accepted += rep.accepted;
        self.report.duplicates += rep.duplicates;
        self.report.skipped += rep.skipped;
        self.report.rejected.extend(rep.rejected);
        self.report.forks.extend(rep.forks);
    }
}

/// Entries not (yet) for this node kept for a second look at the end.
const MAX_DEFERRED: usize = 100_000;
/// ... and up to this many bytes of them (entries may be large: the count alone would allow
/// gigabytes).
const MAX_DEFERRED_BYTES: usize = 256 << 20;
/// Grant sections taken from one bundle (a writer puts one).
const MAX_GRANT_SECTIONS: usize = 16;

/// Reads exactly `buf.len()` bytes; `Ok(false)` at the end of the file (a cut).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(true)
}

/// A good section, as read.
enum Section<'a> {
    Entries(Vec<Entry>),
    Blob(fmt::BlobPiece<'a>),
    /// A grant statement whose signature verified.
    Grant(fmt::GrantStatement),
}

/// What reading a bundle found besides its entries.
#[derive(Default)]
struct Reading {
    sections: usize,
    complete: bool,
    problems: Vec<String>,
}

/// Reads a bundle section by section, handing each good section's entries to `take`; damaged
/// sections are reported and skipped, a cut or an unreadable header ends the reading.
fn read_bundle(
    file: &Path,
    progress: impl Fn(u64, u64),
    mut take: impl FnMut(Section<'_>) -> Result<()>,
) -> Result<Reading> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut done = fmt::MAGIC.len() as u64;
    let mut r = BufReader::new(f);
    let mut magic = [0u8; 8];
    if !read_full(&mut r, &mut magic)? || &magic != fmt::MAGIC {
        bail!(BundleError::Magic);
    }
    let mut t = Reading::default();
    let mut seen = Toc::new();
    loop {
        let index = t.sections;
        let mut head = [0u8; fmt::SECTION_HEADER];
        if !read_full(&mut r, &mut head)? {
            t.problems.push(format!("the file ends after section {index} (no table of contents): cut short"));
            break;
        }
        let h = match SectionHeader::decode(&head, index) {
            Ok(h) => h,
            Err(e) => {
                t.problems.push(format!("{e}; nothing after it can be read"));
                break;
            }
        };
        let mut body = vec![0u8; h.length as usize];
        let mut sum = [0u8; fmt::CHECKSUM];
        if !read_full(&mut r, &mut body)? || !read_full(&mut r, &mut sum)? {
            t.problems.push(format!("section {index} is cut short: its {} entries are missing", h.count));
            break;
        }
        if h.kind == fmt::KIND_TOC && fmt::checksum(&head, &body) == sum {
            match fmt::decode_toc(&body) {
                Ok(toc) if toc == seen => t.complete = true,
                Ok(_) => {
                    t.problems.push(BundleError::Toc("sections are missing, added or reordered".into()).to_string())
                }
                Err(e) => t.problems.push(e.to_string()),
            }
            let mut extra = [0u8; 1];
            if read_full(&mut r, &mut extra)? {
                t.problems.push("bytes after the table of contents were ignored".into());
            }
            break;
        }
        t.sections += 1;
        done += (fmt::SECTION_HEADER + body.len() + fmt::CHECKSUM) as u64;
        progress(done, size);
        seen.push((h.kind, h.count, Bytes(sum)));
        if fmt::checksum(&head, &body) != sum {
            t.problems.push(format!("{}: its entries were not taken", BundleError::Checksum { index }));
            continue;
        }
        if h.kind == fmt::KIND_GRANT {
            match fmt::decode_grant(&h, &body, index) {
                Ok(g) => take(Section::Grant(g))?,
                Err(e) => t.problems.push(e.to_string()),
            }
            continue;
        }
        if h.kind == fmt::KIND_BLOB {
            match fmt::decode_blob(&h, &body, index) {
                Ok(piece) => take(Section::Blob(piece))?,
                Err(e) => t.problems.push(e.to_string()),
            }
            continue;
        }
        let (entries, err) = fmt::decode_entries(&h, &body, index);
        if let Some(e) = err {
            t.problems.push(format!("{e}; the entries before it were taken"));
        }
        take(Section::Entries(entries))?;
    }
    progress(size, size);
    Ok(t)
}

fn import(cx: &Cx, out: &mut Out, file: &Path) -> Result<u8> {
    // The accept set grows only as entries are taken (a device log names its user): it is
    // computed again only when something was taken since and an entry is not in it, so a
    // bundle of many wanted logs costs one computation, not one per section.
    let mut accept = cx.read(|n| Ok(n.accept_set()?))?;
    let mut stale = false;
    let refresh = |accept: &mut BTreeSet<[u8; 32]>, stale: &mut bool| -> Result<()> {
        if std::mem::take(stale) {
            *accept = cx.read(|n| Ok(n.accept_set()?))?;
        }
        Ok(())
    };
    let mut t = Tally::default();
    let mut deferred: Vec<Entry> = Vec::new();
    let mut deferred_bytes = 0usize;
    let mut blob_sections = 0usize;
    let mut grants: Vec<fmt::GrantStatement> = Vec::new();
    let read = read_bundle(
        file,
        |done, size| cx.report("import", done, size),
        |section| {
            let entries = match section {
                Section::Entries(e) => e,
                Section::Blob(_) => {
                    blob_sections += 1;
                    return Ok(());
                }
                Section::Grant(g) => {
                    if grants.len() < MAX_GRANT_SECTIONS {
                        grants.push(g);
                    }
                    return Ok(());
                }
            };
            if entries.iter().any(|e| !accept.contains(&e.header().author.0)) {
                refresh(&mut accept, &mut stale)?;
            }
            let (ours, theirs): (Vec<Entry>, Vec<Entry>) =
                entries.into_iter().partition(|e| accept.contains(&e.header().author.0));
            // A log may become ours through a later section: kept for a second look, up to a
            // bound.
            let bytes: usize =
                theirs.iter().map(|e| e.signed_bytes.len() + e.payload.as_ref().map_or(0, Vec::len)).sum();
            if deferred.len() + theirs.len() <= MAX_DEFERRED && deferred_bytes + bytes <= MAX_DEFERRED_BYTES {
                deferred.extend(theirs);
                deferred_bytes += bytes;
            } else {
                t.not_for_us += theirs.len();
            }
            let rep = ingest(cx, super::waiting::split(cx, ours)?)?;
            stale |= rep.accepted > 0;
            t.take(rep);
            Ok(())
        },
    )?;
    (t.sections, t.complete, t.problems) = (read.sections, read.complete, read.problems);
    if !deferred.is_empty() {
        refresh(&mut accept, &mut stale)?;
    }
    let (ours, theirs): (Vec<Entry>, Vec<Entry>) =
        deferred.into_iter().partition(|e| accept.contains(&e.header().author.0));
    t.not_for_us += theirs.len();
    t.take(ingest(cx, super::waiting::split(cx, ours)?)?);
    // What this bundle brought may let entries of earlier bundles in (and this one's wait).
    let (settled, waiting) = super::waiting::settle(cx, |e| ingest(cx, e))?;
    t.take(settled);
    // Grants last: the trust view now knows the devices the entries certified.
    let granted = cx.write(|n| {
        let mut taken = 0usize;
        for g in &grants {
            taken += usize::from(n.receive_bundle_grants(&g.device, &g.tags)?);
        }
        Ok(taken)
    })?;
    // Files: read again for the blob sections, now that every file message carried is known.
    // (Blob sections no message here names are not taken: another reader's files.)
    let (files, blobs_not_for_us) = if blob_sections > 0 { import_blobs(cx, file, &mut t.problems)? } else { (0, 0) };
    let rejected: Vec<Value> = t
        .report
        .rejected
        .iter()
        .map(|x| json!({ "log": hex::encode(x.author), "seq": x.seq, "error": x.error.code(), "reason": x.error.to_string() }))
        .collect();
    let v = json!({
        "file": file.display().to_string(),
        "complete": t.complete,
        "sections": t.sections,
        "accepted": t.report.accepted,
        "duplicates": t.report.duplicates,
        "rejected": rejected,
        "skipped": t.report.skipped,
        "not_for_us": t.not_for_us,
        "forks": t.report.forks.len(),
        "files": files,
        "blob_sections_not_for_us": blobs_not_for_us,
        "grants": granted,
        "waiting": waiting,
        "problems": t.problems,
    });
    out.set(&v, || {
        let mut s = format!(
            "{}: {} new entries, {} already here, {} not for this node, {} refused{}{}\n",
            file.display(),
            t.report.accepted,
            t.report.duplicates,
            t.not_for_us,
            t.report.rejected.len() + t.report.skipped,
            if files > 0 { format!("; {files} files complete") } else { String::new() },
            if t.complete { "" } else { " (incomplete)" }
        );
        if waiting > 0 {
            s += &format!(
                "  {waiting} entries wait for earlier ones (from a bundle not imported yet), or for this device's clock to reach their time\n"
            );
        }
        for r in &rejected {
            s += &format!(
                "  refused {}… seq {}: {}\n",
                &r["log"].as_str().unwrap_or("")[..8],
                r["seq"],
                r["reason"].as_str().unwrap_or("")
            );
        }
        for p in &t.problems {
            s += &format!("  {p}\n");
        }
        s
    });
    Ok(if t.complete && t.problems.is_empty() && t.report.rejected.is_empty() { 0 } else { 1 })
}

/// Takes the blob sections of `file` whose blob a known file message names: each verified
/// against the root (as a download's pieces are), written, recorded. Returns how many files
/// became complete; a piece that does not verify is reported and costs only its range.
fn import_blobs(cx: &Cx, file: &Path, problems: &mut Vec<String>) -> Result<(usize, usize)> {
    use crate::store::blobs::{BlobState, Partial};
    // Files of messages here, not deleted, not from a blocked contact.
    let wanted: std::collections::BTreeMap<[u8; 32], u64> = cx.read(|n| {
        Ok(n.store
            .files()?
            .into_iter()
            .filter(|f| n.store.file_visible(f))
            .map(|f| (f.row.file.root.0, f.row.file.blob_size()))
            .collect())
    })?;
    let blobs = cx.engine.blobs();
    let mut open: std::collections::BTreeMap<[u8; 32], Partial> = std::collections::BTreeMap::new();
    let mut not_asked = 0usize;
    read_bundle(
        file,
        |_, _| {},
        |section| {
            let Section::Blob(p) = section else { return Ok(()) };
            // Only blobs a message here names, at the size it names: nobody can fill the disk with
            // blobs nobody sent.
            if wanted.get(&p.root) != Some(&p.size) {
                not_asked += 1;
                return Ok(());
            }
            let partial = match open.entry(p.root) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    if blobs.state(&p.root) == BlobState::Complete {
                        return Ok(());
                    }
                    match blobs.begin(&p.root, p.size) {
                        Ok(partial) => v.insert(partial),
                        Err(e) => {
                            problems.push(format!("file {}: {e}", hex::encode(&p.root[..6])));
                            return Ok(());
                        }
                    }
                }
            };
            match crate::blob::decode_response(&p.root, p.size, &[p.range], p.bao) {
                Ok(response) => partial.write(&response)?,
                Err(e) => problems.push(format!(
                    "file {}: chunks {}..{} do not verify ({e}); the rest was taken",
                    hex::encode(&p.root[..6]),
                    p.range.0,
                    p.range.1
                )),
            }
            Ok(())
        },
    )?;
    let mut complete = 0;
    for (_, mut partial) in open {
        if partial.finish()? {
            complete += 1;
        } else {
            partial.persist()?;
        }
    }
    cx.engine.files_changed();
    Ok((complete, not_asked))
}

/// Ingests through the engine (validation as from a peer; acknowledgements and events follow),
/// on the running node's runtime or a small one of our own.
fn ingest(cx: &Cx, entries: Vec<Entry>) -> Result<IngestReport> {
    if entries.is_empty() {
        return Ok(IngestReport::default());
    }
    let engine = cx.engine.clone();
    let run = async move { engine.ingest(entries).await };
    let r = match tokio::runtime::Handle::try_current() {
        Ok(h) => h.block_on(run),
        Err(_) => tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run),
    };
    Ok(r?)
}
