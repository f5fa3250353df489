"""System: the host's and each service's resources by the USE method (utilisation, saturation, errors),
under the load that drives them. Read from node-exporter and process-exporter (the `system` profile) and
from Locust's own figure for each generator's CPU.
"""

from lab.core import limits as resources
from lab.dashboards.panels import (
    HOST_CORES,
    HOST_CPU_CORES,
    NODE,
    RATE,
    RUN,
    SATURATION_THRESHOLDS,
    SERVICE_CPU_CORES,
    Limits,
    dashboard,
    layout,
    locust_quantile,
    right_axis,
    stat,
    targets,
    timeseries,
    users_and_rps,
)

PROCESS = 'job="process"'
# The services whose every process runs on one thread: one core is their limit, whatever the host has.
# The API, single-threaded too, is drawn as the limiter measures it (against a lower CPU quota where set).
SINGLE_THREADED = 'groupname=~"redis|locust-master"'


def limit_line(series: str) -> dict:
    """An override that draws `series` (a limit such as the host's cores) as a plain line over a stack."""
    return {
        "matcher": {"id": "byName", "options": series},
        "properties": [
            {"id": "custom.stacking", "value": {"mode": "none", "group": "A"}},
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
        ],
    }


def system(limits: Limits):
    memory_used = f"sum(node_memory_MemTotal_bytes{{{NODE}}}) - sum(node_memory_MemAvailable_bytes{{{NODE}}})"
    memory_total = f"sum(node_memory_MemTotal_bytes{{{NODE}}})"

    def pressure(resource: str) -> str:
        """The share of time at least one task waited for `resource` (the kernel's pressure stall information)."""
        return f"sum(rate(node_pressure_{resource}_waiting_seconds_total{{{NODE}}}{RATE}))"

    def per_service(metric: str, selector: str = "") -> str:
        return f"sum by (groupname) ({metric}{{{PROCESS}{selector}}})"

    panels = layout(
        "Load (Locust)",
        (
            7,
            [
                (12, users_and_rps()),
                (
                    12,
                    timeseries(
                        "p95 response time",
                        targets(("p95", locust_quantile(0.95))),
                        unit="s",
                        thresholds=limits.latency,
                    ),
                ),
            ],
        ),
        (
            5,
            [
                (
                    6,
                    stat(
                        "Host CPU busy",
                        targets(("of its cores", f"{HOST_CPU_CORES} / {HOST_CORES}")),
                        unit="percentunit",
                        thresholds=SATURATION_THRESHOLDS,
                        description="The share of all the host's cores that ran something (not idle, not "
                        "waiting for I/O). Load generators and the system under test share them.",
                    ),
                ),
                (
                    6,
                    stat(
                        "Load average per core",
                        targets(("load / cores", f"sum(node_load1{{{NODE}}}) / {HOST_CORES}")),
                        unit="percentunit",
                        thresholds=SATURATION_THRESHOLDS,
                        description="Runnable and uninterruptible tasks (1-minute load average) per core: "
                        "above 100%, tasks queue for a CPU.",
                    ),
                ),
                (
                    6,
                    stat(
                        "Host memory used",
                        targets(("used", f"({memory_used}) / {memory_total}")),
                        unit="percentunit",
                        thresholds=SATURATION_THRESHOLDS,
                        description="Memory not available to new work (MemTotal - MemAvailable).",
                    ),
                ),
                (
                    6,
                    stat(
                        "Busiest service",
                        targets(("{{groupname}}", f"topk(1, {SERVICE_CPU_CORES})")),
                        decimals=2,
                        text_mode="value_and_name",
                        description="The compose service using the most CPU now, in cores.",
                    ),
                ),
            ],
        ),
        "Host (node-exporter): CPU, memory, disk",
        (
            7,
            [
                (
                    8,
                    timeseries(
                        "Host CPU in cores, by mode",
                        targets(
                            (
                                "{{mode}}",
                                f'sum by (mode) (rate(node_cpu_seconds_total{{{NODE}, mode!~"idle|iowait"}}{RATE}))',
                            ),
                            ("cores", HOST_CORES),
                        ),
                        stacked=True,
                        overrides=[limit_line("cores")],
                        description="Utilisation: the stack reaching the cores line is a host out of CPU. "
                        "`steal` is time the hypervisor gave to others.",
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Host CPU saturation: load and waiting",
                        targets(
                            ("load (1m)", f"sum(node_load1{{{NODE}}})"),
                            ("cores", HOST_CORES),
                            ("tasks waiting for a CPU", pressure("cpu")),
                        ),
                        overrides=[right_axis("tasks waiting for a CPU", "percentunit")],
                        description="Saturation: a load average above the cores, and the share of time "
                        "at least one runnable task waited for a CPU (right axis).",
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Host memory",
                        targets(("used", memory_used), ("total", memory_total)),
                        unit="bytes",
                        overrides=[limit_line("total")],
                        description="Utilisation: memory in use (not available to new work) against the total.",
                    ),
                ),
            ],
        ),
        (
            7,
            [
                (
                    8,
                    timeseries(
                        "Memory saturation and errors",
                        targets(
                            ("tasks waiting for memory", pressure("memory")),
                            (
                                "swap pages/s",
                                f"sum(rate(node_vmstat_pswpin{{{NODE}}}{RATE})) "
                                f"+ sum(rate(node_vmstat_pswpout{{{NODE}}}{RATE}))",
                            ),
                            ("OOM kills", f"sum(increase(node_vmstat_oom_kill{{{NODE}}}{RATE}))"),
                        ),
                        unit="percentunit",
                        overrides=[right_axis("swap pages/s", "short"), right_axis("OOM kills", "short")],
                        description="Saturation: the share of time a task waited for memory, and swapping "
                        "(right axis). Errors: processes the kernel killed for memory (a container over its "
                        "mem_limit counts too).",
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Disk busy time",
                        targets(
                            (
                                "{{device}}",
                                f"sum by (device) (rate(node_disk_io_time_seconds_total{{{NODE}}}{RATE}))",
                            )
                        ),
                        unit="percentunit",
                        thresholds=SATURATION_THRESHOLDS,
                        description="Utilisation: the share of time each disk had I/O in flight.",
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Disk saturation: queue and waiting",
                        targets(
                            (
                                "queue {{device}}",
                                "sum by (device) "
                                f"(rate(node_disk_io_time_weighted_seconds_total{{{NODE}}}{RATE}))",
                            ),
                            ("tasks waiting for I/O", pressure("io")),
                        ),
                        overrides=[right_axis("tasks waiting for I/O", "percentunit")],
                        description="Saturation: the average number of I/O requests in flight or queued per "
                        "disk, and the share of time a task waited for I/O (right axis).",
                    ),
                ),
            ],
        ),
        "Services (process-exporter): each compose service's processes",
        (
            8,
            [
                (
                    12,
                    timeseries(
                        "CPU per service, in cores",
                        targets(("{{groupname}}", SERVICE_CPU_CORES), ("host cores", HOST_CORES)),
                        stacked=True,
                        legend_calcs=["mean", "max"],
                        overrides=[limit_line("host cores")],
                        description="Utilisation of the host's cores by each compose service (all its "
                        "processes). process-exporter reads the whole machine: another lab stack running "
                        "here adds its processes to the same services.",
                    ),
                ),
                (
                    12,
                    timeseries(
                        "Resident memory per service",
                        targets(
                            (
                                "{{groupname}}",
                                per_service("namedprocess_namegroup_memory_bytes", ', memtype="resident"'),
                            )
                        ),
                        unit="bytes",
                        stacked=True,
                        legend_calcs=["lastNotNull", "max"],
                        description="Memory each service's processes hold in RAM.",
                    ),
                ),
            ],
        ),
        (
            7,
            [
                (
                    8,
                    timeseries(
                        "Single-threaded services against their one core",
                        targets(
                            ("api", resources.query(resources.BY_ID["api_cpu"], "$__rate_interval")),
                            (
                                "{{groupname}}",
                                "sum by (groupname) (rate(namedprocess_namegroup_cpu_seconds_total"
                                f"{{{PROCESS}, {SINGLE_THREADED}}}{RATE})) / "
                                f"{per_service('namedprocess_namegroup_num_procs', ', ' + SINGLE_THREADED)}",
                            ),
                        ),
                        unit="percentunit",
                        thresholds=SATURATION_THRESHOLDS,
                        description="The API's uvicorn, Redis and the Locust master each run on one thread: "
                        "one core (100%) is their limit however many the host has (Redis and the master per "
                        "process, averaged). The API's limit is its container's CPU quota where that is lower "
                        '(API_CPUS), as in the Capacity dashboard\'s "What limits capacity".',
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Load generators' CPU, per worker",
                        targets(("{{worker}}", f"locust_worker_cpu_usage_ratio{{{RUN}}}")),
                        unit="percentunit",
                        thresholds=SATURATION_THRESHOLDS,
                        description="Each Locust worker's own figure (1 = its one core). A saturated worker "
                        "sends less load than asked and reports slower response times than the real ones.",
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Preempted per service (involuntary context switches/s)",
                        targets(
                            (
                                "{{groupname}}",
                                "sum by (groupname) (rate(namedprocess_namegroup_context_switches_total"
                                f'{{{PROCESS}, ctxswitchtype="nonvoluntary"}}{RATE}))',
                            )
                        ),
                        description="Saturation per service: how often the kernel took the CPU from a "
                        "service's process that could still run, to give it to another.",
                    ),
                ),
            ],
        ),
    )
    return dashboard(
        "loadlab-system",
        "System",
        "The host's and each service's CPU, memory and disk (utilisation, saturation, errors) under the "
        "load of the run chosen in Run, on one time axis.",
        panels,
        ["system"],
    )
