"""The example Dash app: many gunicorn workers sharing one big frame.

    gunicorn -w 4 -b 127.0.0.1:8050 --chdir examples/dash_app app:server

A loader (loader.py) refreshes the frame every few seconds; the app never
reads Parquet itself. Its callbacks:

- update (the main one): dropdown -> the region's daily revenue (graph) and
  top products (table). It takes only the columns it needs from the shared
  frame, filters and aggregates, and hands the filtered rows on as a
  dash-extensions Serverside output (stored in the backend, not sent to the
  browser).
- detail: takes that Serverside output, in whichever worker runs it, and
  summarizes it.
- share: the region's share of all revenue; the totals of every region come
  from region_totals(), under Flask-Caching's @cache.memoize, so the full
  group-by runs once per data version across all workers.
- version: polls the data version, so graph and table follow a refresh.
"""

import time

import dash
from dash import dash_table, dcc, html
from dash_extensions.enrich import (
    DashProxy,
    Input,
    Output,
    Serverside,
    ServersideOutputTransform,
)
from flask_caching import Cache

import data

frames, cache_config, serverside_backend = data.open_backend()

app = DashProxy(
    __name__,
    title="shoal example: sales",
    transforms=[ServersideOutputTransform(backends=[serverside_backend])],
)
server = app.server
cache = Cache(server, config={"CACHE_DEFAULT_TIMEOUT": 600, **cache_config})

COLUMNS = ["region", "product", "day", "qty", "revenue"]

app.layout = html.Div(
    [
        html.H3("Sales by region"),
        html.Div(id="version", children="data version 0"),
        dcc.Dropdown(
            id="region",
            options=[{"label": r, "value": r} for r in data.REGIONS],
            value=data.REGIONS[0],
            clearable=False,
            style={"width": "300px"},
        ),
        dcc.Graph(id="graph"),
        html.Div(id="share"),
        html.Div(id="detail"),
        dash_table.DataTable(
            id="table",
            columns=[{"name": c, "id": c} for c in ("product", "qty", "revenue")],
            page_size=10,
        ),
        dcc.Store(id="selection"),
        dcc.Interval(id="tick", interval=1000),
    ]
)


@app.callback(Output("version", "children"), Input("tick", "n_intervals"))
def version(_):
    return f"data version {frames.version()}"


@app.callback(
    Output("graph", "figure"),
    Output("table", "data"),
    Output("selection", "data"),
    Input("region", "value"),
    Input("version", "children"),
)
def update(region, _version):
    df = frames.get(columns=COLUMNS)
    if df is None:
        raise dash.exceptions.PreventUpdate
    sel = data.select(df, region)
    days, revenue = data.daily_revenue(sel)
    figure = {
        "data": [{"type": "scatter", "mode": "lines", "x": days, "y": revenue, "name": region}],
        "layout": {"title": {"text": f"Daily revenue: {region}"}, "height": 350},
    }
    return figure, data.top_products(sel), Serverside(sel[["day", "qty", "revenue"]])


@app.callback(Output("detail", "children"), Input("selection", "data"))
def detail(sel):
    if sel is None:
        raise dash.exceptions.PreventUpdate
    return f"{len(sel):,} orders, {int(sel['qty'].sum()):,} units, revenue {float(sel['revenue'].sum()):,.2f}"


@cache.memoize()
def region_totals(data_version):
    """Revenue of every region for one data version (the expensive part)."""
    df = frames.get(columns=["region", "revenue"])
    totals = df.groupby("region")["revenue"].sum()
    return {data.REGIONS[int(r)]: float(v) for r, v in totals.items()}, time.time()


@app.callback(
    Output("share", "children"),
    Input("region", "value"),
    Input("version", "children"),
)
def share(region, _version):
    totals, _ = region_totals(frames.version())
    whole = sum(totals.values()) or 1.0
    return f"{region}: {100.0 * totals.get(region, 0.0) / whole:.1f} % of all revenue"


if __name__ == "__main__":
    app.run(debug=False, port=8050)
