# The p7 image: one Apache Kafka broker (KRaft mode) plus Python with the project's pins
# (or others: PYTHON_REQUIREMENTS and PYTHON_CONSTRAINTS below).
#   docker build . -t p7
#   docker run -d -p 9092:9092 -v ./files:/files --name=p7 p7
#   docker exec -it p7 python3 /files/producer.py
# Without -v the programs run from the image's own copy of files/ (the last step).
# Kafka comes the way the native path gets it: broker/launcher.py resolves broker/pom.xml from
# Maven Central (version: broker/kafka-version) into its jar cache: the broker and Kafka's tools
# (broker/bin/, on PATH). Maven runs only in the build stage; the final image carries the jars, a
# JRE, the Python packages and the programs.

# ---- what both stages share: Debian's Java 17 runtime
FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*

# ---- build stage: Maven fills the launcher's jar cache (/opt/p7/broker/.cache)
FROM runtime AS kafka-jars
RUN apt-get update \
 && apt-get install -y --no-install-recommends maven \
 && rm -rf /var/lib/apt/lists/*
COPY broker/kafka-version broker/pom.xml broker/launcher.py /opt/p7/broker/
RUN python3 /opt/p7/broker/launcher.py fetch

# ---- the image: the JRE, the runtime pins, the jars, the launcher with its config, the programs
FROM runtime
# The programs' pins, and under them every package at the version requirements.lock gives it
# (the lock the native venv installs through too). The two build arguments name other files of
# the context to install instead; the grader's course image (grader/course_env.py) is this image
# with the course's packages:
#   --build-arg PYTHON_REQUIREMENTS=grader/course-requirements.txt \
#   --build-arg PYTHON_CONSTRAINTS=grader/course.lock
# Whichever they name is copied to /opt/p7/requirements.txt and /opt/p7/requirements.lock.
ARG PYTHON_REQUIREMENTS=requirements.txt
ARG PYTHON_CONSTRAINTS=requirements.lock
COPY ${PYTHON_REQUIREMENTS} /opt/p7/requirements.txt
COPY ${PYTHON_CONSTRAINTS} /opt/p7/requirements.lock
RUN pip install --no-cache-dir -r /opt/p7/requirements.txt -c /opt/p7/requirements.lock
COPY --from=kafka-jars /opt/p7/broker/.cache /opt/p7/broker/.cache
# pom.xml too: the launcher takes the jar cache as complete only for the pom it was fetched for.
COPY broker/kafka-version broker/pom.xml broker/launcher.py broker/server.properties \
     broker/log4j2.properties broker/tools-log4j2.properties /opt/p7/broker/
# Kafka's tools on PATH: `docker exec p7 kafka-topics --describe --topic temperatures`.
COPY broker/bin/ /opt/p7/broker/bin/
ENV PATH=/opt/p7/broker/bin:$PATH
# The three-node cluster's settings on top (compose.yaml's nodes; the single broker ignores them).
COPY broker/cluster.properties /opt/p7/broker/

# Inside the container the broker listens on every interface, so that `-p 9092:9092` reaches it
# from the host; it advertises localhost:PORT, which is right both inside and on the host.
# PORT is 9092, or the port of KAFKA_BOOTSTRAP when `docker run -e` sets it (the programs read
# the same variable, so they follow it): autograde.py --docker runs beside a p7 on 9092 that way.
ENV P7_LISTEN_HOST=0.0.0.0 \
    P7_BROKER_STATE=/var/lib/p7-kafka
# 8544: files/dashboard.py (`docker run -p 8544:8544`), listening on P7_LISTEN_HOST as well.
EXPOSE 9092 8544

# The programs, last, so that editing one rebuilds only this small layer. A container started
# without a mount runs them from here and they write their outputs next to themselves, into the
# container's own layer (kept across docker stop and start, gone with docker rm); with
# `-v ./files:/files` the user's folder shadows the copy. .dockerignore keeps the committed
# sample outputs and any run's leftovers out: a consumer in a fresh container must find no
# partition file, or it would seek the new topic to a sample's offset.
COPY files/ /files/
CMD ["python3", "/opt/p7/broker/launcher.py", "start", "--foreground"]
