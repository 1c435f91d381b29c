#!/usr/bin/env bash
echo admin
