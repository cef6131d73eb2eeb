"""Builds a one-pass run: read every source, apply the job's composite, write the staged tables.

The job's steps are composed once, in `transforms.job.SocialListening`; this module adds
the run's reading (`transforms.fetch.ReadSources`: files and/or platforms) in front of it
and its writing behind it, for the tables `schemas.tables` declares. A sliced run
(`pipelines.chunked`) applies the same composite to each slice instead.
"""

from __future__ import annotations

import typing

import apache_beam as beam

from pipelines.plan import RunPlan
from pipelines.tables import write_tables
from schemas.tables import FETCH_TABLES
from transforms.fetch import ReadSources
from transforms.job import JobSpec, SocialListening, dead_letter_prefix

# What the job's composite reads of what `ReadSources` outputs.
_JOB_INPUTS = ("mentions", "dead_letters", "brand_replies", "account_snapshots")


def build_social_listening(pipeline: beam.Pipeline, plan: RunPlan, job: JobSpec
                           ) -> typing.Dict[str, beam.PCollection]:
    """Adds the whole one-pass run to `pipeline`.

    Args:
        pipeline: The pipeline (or TestPipeline) to add the steps to.
        plan: The planned run (inputs, fetch plan, staging directory).
        job: What the composite needs (`plan.job(model_handler)`).

    Returns:
        The PCollections: every table the run writes (`schemas.tables.run_tables`), 'unmatched', and 'written'
        (one (table, partition, file, rows) per file written).
    """
    read = pipeline | "ReadMentions" >> ReadSources(plan.config.inputs, plan.config.max_text_chars, plan.fetch)
    outputs = {k: read[k] for k in _JOB_INPUTS if k in read} | "SocialListening" >> SocialListening(job)
    if plan.fetch is not None:
        outputs.update({name: read[name] for name in FETCH_TABLES})
    outputs["written"] = write_tables(outputs, plan.staging_dir, {"dead_letters": dead_letter_prefix(plan.window)})
    return outputs
