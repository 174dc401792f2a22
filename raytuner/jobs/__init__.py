"""Ray Jobs API: submitting an experiment to a cluster as a job, and following jobs.

``client`` connects (token authentication, clear errors), ``submission`` turns a checked
spec into a job, ``status`` lists, inspects, follows and stops jobs. Ray is imported
inside the functions, never at module level.
"""

from raytuner.jobs.client import connect
from raytuner.jobs.status import JobRow, follow_logs, get_job, job_logs, list_jobs, stop_job
from raytuner.jobs.submission import Submission, build_entrypoint, submit

__all__ = [
    "JobRow",
    "Submission",
    "build_entrypoint",
    "connect",
    "follow_logs",
    "get_job",
    "job_logs",
    "list_jobs",
    "stop_job",
    "submit",
]
