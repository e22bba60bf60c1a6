#!/usr/bin/env python3
"""Opens redovault WORM pieces with the recovery private key: the independent reader.

A piece is what the collector uploads to the S3 Object Lock bucket: a 132-byte header, an HPKE
(RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) encapsulated key,
and the sealed list of chunks (ARCHITECTURE.md, "The collector's streams in WORM").

This program is deliberately independent of the Rust implementation: it was written from that
section of ARCHITECTURE.md alone, shares no code with the collector, and does HPKE with pyhpke
(on pyca/cryptography) instead of the Rust `hpke` crate. If it opens what the collector seals,
the recovery team can read its pieces without redovault.

    open_piece.py --key recovery.key PIECE [PIECE...] [--redo-out DIR]

Prints one JSON object per piece on stdout (JSON lines). With --redo-out, appends each piece's
redo to DIR/<sequence>.redo (give the pieces in chain order). Exit 0 if every piece opened and
checked out, 1 otherwise (one message per bad piece on stderr, naming the file), 2 on usage.
"""

import argparse
import hashlib
import json
import os
import struct
import sys

try:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey
    import zstandard
except ImportError as e:
    sys.exit(f"open_piece: {e}: run it with the python that deploy/interop-venv.sh prints")

MAGIC = b"RVPIECE1"
HEADER_LEN = 132
ENC_LEN = 32  # X25519 public key
TAG_LEN = 16  # AES-256-GCM
INFO = b"redovault piece v1"
# magic, header len, version, suite, db id, resetlogs id, thread, reserved, index,
# start seq, start offset, end seq, end offset, flags, reserved, chunk count, plaintext len,
# prev, key id
HEADER = struct.Struct("<8sHBBIIHHQIQIQB3sII32s32s")
CHUNK = struct.Struct("<BBHIQII")  # version, flags, reserved, seq, offset, redo len, commits
# usn, slot, sqn, scn, has time, reserved, end seq, time, end offset
COMMIT = struct.Struct("<HHIQB3sIqQ")
FLAG_LOG_END = 1
FLAG_ZSTD = 2  # chunk version 2: the redo is one zstd frame
MAX_CHUNK_REDO = 4 << 20
assert HEADER.size == HEADER_LEN and CHUNK.size == 24 and COMMIT.size == 40


class Bad(Exception):
    """A piece (or the key) that does not check out; the message says where."""


def load_key(path):
    """The recipient's private key and the key id pieces must carry (SHA-256 of its public key)."""
    try:
        with open(path, "rb") as f:
            sk = KEMKey.from_pem(f.read())
    except Exception as e:  # unreadable, not PEM, encrypted, unknown algorithm
        raise Bad(f"{path}: cannot load the recovery private key: {e}") from None
    if not isinstance(sk.raw, X25519PrivateKey):
        raise Bad(f"{path}: not an X25519 private key (PKCS#8 PEM from deploy/recovery-key.sh)")
    return sk, hashlib.sha256(sk.raw.public_key().public_bytes_raw()).digest()


def field(name, off, what):
    return Bad(f"header offset {off} ({name}): {what}")


def parse_header(obj, key_id):
    if len(obj) < HEADER_LEN + ENC_LEN + TAG_LEN:
        least = HEADER_LEN + ENC_LEN + TAG_LEN
        raise Bad(f"{len(obj)} bytes: shorter than header, enc and tag ({least})")
    (magic, hlen, version, suite, db_id, rl_id, thread, res1, index, s_seq, s_off, e_seq, e_off,
     flags, res2, count, plen, prev, kid) = HEADER.unpack_from(obj, 0)
    if magic != MAGIC:
        raise field("magic", 0, f"{magic!r}, expected {MAGIC!r}")
    if hlen != HEADER_LEN:
        raise field("header length", 8, f"{hlen}, expected {HEADER_LEN}")
    if version != 1:
        raise field("format version", 10, f"{version}, expected 1")
    if suite != 1:
        raise field("suite", 11, f"{suite}, expected 1 (X25519, HKDF-SHA256, AES-256-GCM)")
    if res1 != 0:
        raise field("reserved", 22, f"{res1:#x}, expected 0")
    if index < 1:
        raise field("index", 24, "0, chain indexes start at 1")
    if flags & ~FLAG_LOG_END:
        raise field("flags", 56, f"{flags:#04x}: unknown bits")
    if res2 != bytes(3):
        raise field("reserved", 57, f"{res2.hex()}, expected 0")
    if count < 1:
        raise field("chunk count", 60, "0: a piece holds at least one chunk")
    if len(obj) != HEADER_LEN + ENC_LEN + plen + TAG_LEN:
        raise field("plaintext length", 64, f"{plen}, but the object has {len(obj)} bytes, "
                    f"not {HEADER_LEN + ENC_LEN + plen + TAG_LEN} (header, enc, plaintext, tag)")
    if (index == 1) != (prev == bytes(32)):
        raise field("prev", 68, f"{prev.hex()} for index {index}: zeros exactly for the first piece")
    if kid != key_id:
        raise field("recovery key id", 100, f"{kid.hex()}, but this key's id is {key_id.hex()}")
    return dict(db_id=db_id, resetlogs_id=rl_id, thread=thread, index=index, start=(s_seq, s_off),
                end=(e_seq, e_off), log_end=bool(flags & FLAG_LOG_END), count=count, plen=plen,
                prev=prev)


def parse_chunks(pt, h):
    """The chunk records of a plaintext, checked against each other and the header."""
    chunks, at, pos = [], 0, h["start"]
    for i in range(h["count"]):
        where = f"plaintext offset {at} (chunk {i})"
        if at + 4 > len(pt):
            raise Bad(f"{where}: plaintext ends after {i} of {h['count']} chunks")
        (n,) = struct.unpack_from("<I", pt, at)
        at += 4
        if n < CHUNK.size or at + n > len(pt):
            raise Bad(f"{where}: record length {n} does not fit the {len(pt)}-byte plaintext")
        c, at = pt[at:at + n], at + n
        version, flags, res, seq, off, rlen, ncommits = CHUNK.unpack_from(c, 0)
        known = {1: FLAG_LOG_END, 2: FLAG_LOG_END | FLAG_ZSTD}.get(version)
        if known is None or flags & ~known or res:
            raise Bad(f"{where}: chunk version {version}, flags {flags:#x}, reserved {res:#x}")
        zstd = bool(flags & FLAG_ZSTD)
        fixed = CHUNK.size + ncommits * COMMIT.size
        if zstd and not (fixed < n and n - fixed < rlen <= MAX_CHUNK_REDO):
            raise Bad(f"{where}: zstd frame of {n - fixed} bytes for {rlen} redo bytes")
        if not zstd and n != fixed + rlen:
            raise Bad(f"{where}: length {n} != 24 + 40 x {ncommits} commits + {rlen} redo bytes")
        if (seq, off) != pos:
            raise Bad(f"{where}: starts at {seq}/{off}, expected {pos[0]}/{pos[1]} (gap or overlap)")
        commits = []
        for k in range(ncommits):
            usn, slot, sqn, scn, has_time, cres, end_seq, time, end_off = COMMIT.unpack_from(
                c, CHUNK.size + k * COMMIT.size)
            if has_time > 1 or cres != bytes(3):
                raise Bad(f"{where}: commit {k}: has-time {has_time}, reserved {cres.hex()}")
            commits.append({"xid": f"{usn}.{slot}.{sqn}", "scn": scn,
                            "time": time if has_time else None, "end": [end_seq, end_off]})
        redo = c[fixed:]
        if zstd:
            try:
                # At most the declared length: a frame that says or holds more is an error
                # (nothing larger is allocated).
                size = zstandard.frame_content_size(redo)
                if size > rlen:
                    raise Bad(f"{where}: zstd frame says {size} bytes, {rlen} declared")
                redo = zstandard.ZstdDecompressor().decompress(redo, max_output_size=rlen)
            except zstandard.ZstdError as e:
                raise Bad(f"{where}: zstd frame: {e}") from None
            if len(redo) != rlen:
                raise Bad(f"{where}: zstd frame holds {len(redo)} bytes, {rlen} declared")
        log_end = bool(flags & FLAG_LOG_END)
        chunks.append(dict(seq=seq, off=off, log_end=log_end, commits=commits, redo=redo))
        pos = (seq + 1, 0) if log_end else (seq, off + rlen)
    if at != len(pt):
        raise Bad(f"plaintext offset {at}: {len(pt) - at} bytes after the last of {h['count']} chunks")
    last = chunks[-1]
    if (last["seq"], last["off"] + len(last["redo"])) != h["end"]:
        raise Bad(f"chunks end at {last['seq']}/{last['off'] + len(last['redo'])}, "
                  f"header end (offset 44) says {h['end'][0]}/{h['end'][1]}")
    if last["log_end"] != h["log_end"]:
        raise Bad(f"last chunk's log end is {last['log_end']}, "
                  f"header flags (offset 56) say {h['log_end']}")
    return chunks


def open_piece(path, sk, key_id, suite):
    try:
        with open(path, "rb") as f:
            obj = f.read()
    except OSError as e:
        raise Bad(f"cannot read: {e.strerror}") from None
    h = parse_header(obj, key_id)
    aad, enc, ct = obj[:HEADER_LEN], obj[HEADER_LEN:HEADER_LEN + ENC_LEN], obj[HEADER_LEN + ENC_LEN:]
    try:
        pt = suite.create_recipient_context(enc, sk, info=INFO).open(ct, aad=aad)
    except Exception as e:  # pyhpke's OpenError, or a bad enc point
        raise Bad(f"HPKE open failed ({type(e).__name__}): wrong key, or the object was altered"
                  ) from None
    chunks = parse_chunks(pt, h)
    redo = b"".join(c["redo"] for c in chunks)
    summary = {
        "file": path, "db_id": h["db_id"], "resetlogs_id": h["resetlogs_id"], "thread": h["thread"],
        "index": h["index"], "start": list(h["start"]), "end": list(h["end"]), "log_end": h["log_end"],
        "chunks": len(chunks), "commits": [m for c in chunks for m in c["commits"]],
        "redo_sha256": hashlib.sha256(redo).hexdigest(), "redo_bytes": len(redo),
        "prev": h["prev"].hex(), "object_sha256": hashlib.sha256(obj).hexdigest(),
    }
    return summary, chunks


def write_redo(out_dir, chunks, ends):
    """Appends each chunk's redo to OUT/<seq>.redo; refuses a gap with what this run wrote before."""
    for c in chunks:
        seq, off = c["seq"], c["off"]
        if seq in ends and ends[seq] != off:
            raise Bad(f"redo of sequence {seq} starts at {off}, but {seq}.redo so far ends at "
                      f"{ends[seq]}: pieces not given in chain order, or a gap between them")
        with open(os.path.join(out_dir, f"{seq}.redo"), "ab") as f:
            f.write(c["redo"])
        ends[seq] = off + len(c["redo"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key", required=True, help="the recovery private key (PKCS#8 PEM)")
    ap.add_argument("--redo-out", metavar="DIR", help="append each piece's redo to DIR/<seq>.redo")
    ap.add_argument("pieces", nargs="+", metavar="PIECE")
    args = ap.parse_args()
    try:
        sk, key_id = load_key(args.key)
        if args.redo_out:
            os.makedirs(args.redo_out, exist_ok=True)
    except (Bad, OSError) as e:
        print(f"open_piece: {e}", file=sys.stderr)
        return 1
    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)
    failed, ends = 0, {}
    for path in args.pieces:
        try:
            summary, chunks = open_piece(path, sk, key_id, suite)
            if args.redo_out and not failed:  # after a bad piece the redo would have a hole
                write_redo(args.redo_out, chunks, ends)
        except (Bad, OSError) as e:
            failed += 1
            print(f"open_piece: {path}: {e}", file=sys.stderr)
            continue
        print(json.dumps(summary), flush=True)
    if failed:
        print(f"open_piece: {failed} of {len(args.pieces)} pieces failed"
              + ("; redo output stopped at the first bad one" if args.redo_out else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
