"""Sovereignty map: steward regions and exactly the H3 cells published inside them."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import services
from app.app_pages import common

version = common.need_version()
st.title(f"Sovereignty map — {version}")
published = services.published_cells(version)
report = services.screen_report(version)
regions = services.regions_geojson()
if published is None or report is None:
    st.error("This version holds no sovereignty screen (sovereignty/published.geojson).")
    st.stop()

me = common.current_reviewer()
region_rows = sorted(report["regions"], key=lambda r: (r["steward_id"] != me, r["region_id"]))
if me and any(r["steward_id"] == me for r in region_rows):
    st.info(f"Your regions ({me}) are listed first.")
labels = {r["region_id"]: f"{r['nation']} — {r['tier']}" for r in region_rows}
chosen = st.multiselect("Regions", list(labels), default=list(labels), format_func=labels.get)

cells = [
    f
    for f in published["features"]
    if f["properties"]["kind"] == "h3" and f["properties"]["region_id"] in chosen
]
native = [f for f in published["features"] if f["properties"]["kind"] == "native"]
show_native = st.toggle("Show native grid points published outside regions", value=False)

focus = st.selectbox(
    "Zoom to", ["all selected regions", *chosen], format_func=lambda r: labels.get(r, r)
)
figure = go.Figure()
state_lons, state_lats = services.context_outlines()
figure.add_trace(
    go.Scattermap(
        lon=state_lons,
        lat=state_lats,
        mode="lines",
        line={"color": "#b0b0b0", "width": 0.6},
        hoverinfo="skip",
        name="US states (orientation)",
    )
)
if cells:
    figure.add_trace(
        go.Choroplethmap(
            geojson={"type": "FeatureCollection", "features": cells},
            locations=[f["properties"]["h3"] for f in cells],
            featureidkey="properties.h3",
            z=[f["properties"]["mean"] for f in cells],
            colorscale="RdBu_r",
            colorbar={"title": "mean (K)"},
            marker={"opacity": 0.75, "line": {"width": 0.3}},
            customdata=[
                [
                    f["properties"]["count"],
                    f["properties"]["resolution"],
                    f["properties"]["region_id"],
                ]
                for f in cells
            ],
            hovertemplate="%{location}<br>mean %{z:.2f} K<br>%{customdata[0]} samples, res %{customdata[1]}<br>%{customdata[2]}<extra></extra>",
            name="published cells",
        )
    )
by_id = {r["region_id"]: r for r in report["regions"]}
focus_features = [
    f
    for f in regions["features"]
    if f["properties"]["region_id"] in (chosen if focus == "all selected regions" else [focus])
]
for feature in regions["features"]:
    rid = feature["properties"]["region_id"]
    if rid not in chosen:
        continue
    info = by_id.get(rid, {})
    withheld = not info.get("published", True)
    polygons = feature["geometry"]["coordinates"]
    if feature["geometry"]["type"] == "Polygon":
        polygons = [polygons]
    for polygon in polygons:
        ring = polygon[0]
        figure.add_trace(
            go.Scattermap(
                lon=[p[0] for p in ring],
                lat=[p[1] for p in ring],
                mode="lines",
                fill="toself" if withheld else "none",
                fillcolor="rgba(60,60,60,0.45)" if withheld else None,
                line={"color": "#444444" if withheld else "#1f6f5c", "width": 2},
                name=f"{rid} ({'withheld' if withheld else info.get('tier', '')})",
                hovertext=f"{rid}: {info.get('withheld_reason') or info.get('tier')}",
                hoverinfo="text",
            )
        )
if show_native and native:
    figure.add_trace(
        go.Scattermap(
            lon=[f["geometry"]["coordinates"][0] for f in native],
            lat=[f["geometry"]["coordinates"][1] for f in native],
            mode="markers",
            marker={
                "size": 4,
                "color": [f["properties"]["mean"] for f in native],
                "colorscale": "RdBu_r",
            },
            name="native grid (outside regions)",
        )
    )
figure.update_layout(
    map={"style": "white-bg", **services.map_view(focus_features)},
    height=560,
    margin={"l": 0, "r": 0, "t": 0, "b": 0},
    legend={"orientation": "h"},
)
st.plotly_chart(figure)
st.caption(
    "Tile-less map (no basemap is fetched). Grey filled regions are withheld: nothing is published "
    "inside them or in their one-ring buffer. Cells with fewer samples than the minimum are suppressed."
)

st.subheader("Per region")
st.dataframe(
    pd.DataFrame(
        [
            {
                "region": r["region_id"],
                "nation": r["nation"],
                "steward": r["steward_id"],
                "tier": r["tier"],
                "H3 resolution": r["resolution"],
                "cells published": r["cells_published"],
                "cells suppressed": r["cells_suppressed"],
                "samples withheld": r["samples_withheld"],
                "withheld because": r.get("withheld_reason") or "",
                "labels": ", ".join(r.get("labels", [])),
            }
            for r in region_rows
        ]
    ),
    hide_index=True,
)
policy = report["policy"]
st.caption(
    f"Minimum count {policy['min_count']} samples per cell; resolutions: public-generalized "
    f"{policy['resolution_public_generalized']}, restricted {policy['resolution_restricted']}, internal "
    f"{policy['resolution_internal']}; withheld buffer {policy['withheld_buffer_rings']} ring(s)."
)
