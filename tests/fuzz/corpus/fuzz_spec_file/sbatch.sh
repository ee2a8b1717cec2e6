#!/bin/bash
#SBATCH --job-name=sweep
#SBATCH --gres=gpu:a100:2
#SBATCH --array=0-99%8
#SBATCH -t 2-00:00:00
#SBATCH --output=logs/%x_%A_%a.out
python train.py $SLURM_ARRAY_TASK_ID
