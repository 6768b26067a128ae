// manifest: the provenance of a results folder, DIR/manifest.json (and the same text in the HDF5
// file's /run/manifest dataset, docs/results.md).
//
// It records what makes two runs the same experiment: ibc's version and git revision, the job
// text, every input file's path, size and SHA-256 (the bytes on disk, compressed as
// distributed), the documents (how many, the sample's seed and its document numbers: a SHA-256 of
// them as decimal lines and, up to MANIFEST_MAX_INDICES, the numbers themselves), every
// checkpoint's config.json / tokenizer.json SHA-256 and its safetensors files' sizes and header
// SHA-256, the job's tokenizer and anchors files' SHA-256, the temperature (mode, and the value per
// checkpoint width), the BOS/special-token policy. No time stamps: the same inputs give the
// same bytes. A file that cannot be read is recorded as {"error": why}: the run reports it where
// it uses the file.
// Functions run on one rank (rank 0) and are not collective, except manifest_text_shared.
#ifndef IBC_MANIFEST_H
#define IBC_MANIFEST_H

#include "ibc/corpus.h"
#include "ibc/err.h"
#include "ibc/job.h"

#define MANIFEST_MAX_INDICES 100000 // more sampled documents are recorded by count and SHA-256 only

// The manifest of job j over corpus c (as corpus_read returned it on this rank), as JSON text
// (malloc'd).
char *manifest_build(const job *j, const corpus *c);

// Writes DIR/manifest.json atomically (io_begin/io_commit). When resuming (the folder already holds
// results) and DIR/manifest.json exists, first compares: an input that changed is IBC_EINPUT, one
// line naming what changed, and nothing is written. The version and git revision may differ (a
// newer ibc may resume); the file then records the new ones.
int manifest_update(const char *dir, const char *json, int resuming, ibc_err *err);

// Merging results folders (Slurm array tasks): every folder's manifest.json must be the same
// (else IBC_EINPUT naming the first folder that differs); it is copied to out. Folders without one
// are allowed (results of an older ibc); then none is written.
int manifest_merge(const char *const *dirs, int n, const char *out, ibc_err *err);

// The text of manifest.json in the folder of the file `path`, or NULL if there is none (results.c
// stores it in /run).
char *manifest_text_beside(const char *path);
// The same as rank 0 reads it, on every rank (HDF5 dataset creation is collective).
// Collective: every rank calls it.
char *manifest_text_shared(const char *path);

#endif
