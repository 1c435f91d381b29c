#!/usr/bin/env bash
# provisioned start.sh
