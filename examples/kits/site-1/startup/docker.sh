#!/usr/bin/env bash
# legacy docker.sh
