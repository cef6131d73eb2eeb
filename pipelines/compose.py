"""Builds a one-pass run: read every source, apply the job's composite, write the tables, commit them.

The job's steps are composed once, in `transforms.job.SocialListening`; this module adds
the run's reading (`transforms.fetch.ReadSources`: files and/or platforms) in front of it
and its writing behind it, for the tables `schemas.tables` declares, into the run's
snapshot; with a commit plan the job's last stage (`transforms.commit.CommitRun`) then
commits that snapshot, with the counts counted along the way. A sliced run
(`pipelines.chunked`) applies the same composite to each slice instead.
"""

from __future__ import annotations


import apache_beam as beam

from pipelines.plan import RunPlan
from transforms.write_tables import write_tables
from schemas.tables import FETCH_TABLES
from transforms.commit import CommitPlan, CommitRun
from transforms.fetch import ReadSources
from transforms.job import JobSpec, SocialListening, dead_letter_prefix, read_counts

# What the job's composite reads of what `ReadSources` outputs.
_JOB_INPUTS = ("mentions", "dead_letters", "brand_replies", "account_snapshots")


def build_social_listening(pipeline: beam.Pipeline, plan: RunPlan, job: JobSpec,
                           commit: CommitPlan | None = None) -> dict[str, beam.PCollection]:
    """Adds the whole one-pass run to `pipeline`.

    Args:
        pipeline: The pipeline (or TestPipeline) to add the steps to.
        plan: The planned run (inputs, fetch plan, the run's snapshot to write into).
        job: What the composite needs (`plan.job(model_handler)`).
        commit: The run's commit plan: the job then ends with its commit stage (None: it only writes).

    Returns:
        The PCollections: every table the run writes (`schemas.tables.run_tables`), 'unmatched', 'written'
        (one (table, partition, file, rows) per file written), 'counts' ((name, value) pairs for the manifest),
        with a fetch plan 'state_files' (the connectors' new state), and with a commit plan 'manifest'.
    """
    read = pipeline | "ReadMentions" >> ReadSources(plan.config.inputs, plan.config.max_text_chars, plan.fetch)
    outputs = {k: read[k] for k in _JOB_INPUTS if k in read} | "SocialListening" >> SocialListening(job)
    if plan.fetch is not None:
        outputs.update({name: read[name] for name in FETCH_TABLES})
        outputs["state_files"] = read["state_files"]
    outputs["written"] = write_tables(outputs, plan.staging_dir, {"dead_letters": dead_letter_prefix(plan.window)})
    outputs["counts"] = (outputs["counts"], *read_counts(read)) | "RunCounts" >> beam.Flatten()
    if commit is not None:
        outputs["manifest"] = ({k: outputs[k] for k in ("written", "counts", "state_files") if k in outputs}
                               | "CommitRun" >> CommitRun(commit))
    return outputs
