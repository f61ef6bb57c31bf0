# Build
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY email_templates email_templates
RUN cargo build --release --locked && strip target/release/newsletter

# Run
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data newsletter \
    && mkdir -p /data && chown newsletter /data
COPY --from=build /src/target/release/newsletter /usr/local/bin/newsletter
USER newsletter
WORKDIR /data
ENV BIND_ADDRESS=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/newsletter.db \
    OUTBOX_DIR=/data/outbox
EXPOSE 8080
VOLUME /data
CMD ["newsletter", "serve"]
